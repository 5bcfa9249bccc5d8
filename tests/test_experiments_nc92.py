"""The nc92 reproduce command prints the table it promises."""

import pytest

from distill_lessons.experiments import nc92


def test_nc92_prints_a_markdown_table_with_the_papers_figures(capsys):
    code = nc92.main(
        [
            "--seeds",
            "2",
            "--lag",
            "4",
            "--sequences",
            "320",
            "--baseline-sequences",
            "64",
            "--methods",
            "bptt3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "| method | runs solved |" in out
    assert "13 of 17" in out and "1,000,000" in out
    assert "chunker C" in out and "tanh RNN, BPTT(3)" in out
    assert "of 2 |" in out


@pytest.mark.parametrize("flag", ["--lag", "--seeds", "--batch"])
def test_nc92_refuses_a_setting_below_one(flag, capsys):
    with pytest.raises(SystemExit):
        nc92.main([flag, "0"])
    assert flag in capsys.readouterr().err
