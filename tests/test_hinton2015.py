"""The hinton2015 experiment runs from the command line and prints tables."""

import pytest

from distill_lessons.experiments import hinton2015
from distill_lessons.reproduce import main as reproduce


def test_one_short_seed_prints_both_tables(capsys):
    assert reproduce(["hinton2015", "--seeds", "1", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    for row in ("| teacher |", "| scratch |", "| soft T=4 |", "| logit MSE |"):
        assert row in out
    assert "Omitted digit 3" in out
    assert "146" in out  # Hinton et al.'s small net on MNIST, for scale


def test_zero_seeds_is_refused():
    with pytest.raises(SystemExit):
        hinton2015.main(["--seeds", "0"])
