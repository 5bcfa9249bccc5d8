"""Tests of the reproduce command's dispatcher."""

from distill_lessons.reproduce import EXPERIMENTS, main


def test_list_names_every_experiment(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out


def test_an_unknown_experiment_is_refused_with_the_choices(capsys):
    assert main(["nc93"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nc93'" in err and "nc92" in err


def test_a_value_the_library_refuses_is_an_error_message_not_a_traceback(
    capsys, monkeypatch
):
    import sys
    import types

    def fake_main(argv):
        raise ValueError(f"sequences must be an integer >= 1, got {argv[1]}")

    module = types.ModuleType("fake_experiment_for_test")
    module.main = fake_main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(EXPERIMENTS, "fake", (module.__name__, "a test"))
    assert main(["fake", "--sequences", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: fake: sequences must be an integer >= 1")


def test_a_missing_input_file_is_an_error_message_not_a_traceback(
    capsys, monkeypatch
):
    import sys
    import types

    def fake_main(argv):
        raise FileNotFoundError(f"path must name a text file: {argv[1]}")

    module = types.ModuleType("fake_file_experiment_for_test")
    module.main = fake_main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(EXPERIMENTS, "fake", (module.__name__, "a test"))
    assert main(["fake", "--corpus", "/no/such/file.txt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: fake: path must name a text file")
