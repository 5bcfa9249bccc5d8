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
