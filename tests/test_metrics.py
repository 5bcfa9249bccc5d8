"""Tests of distill_lessons.metrics, with values computed by hand."""

import math

import pytest
import torch

from distill_lessons.metrics import accuracy, bits_per_symbol, perplexity


def test_accuracy_counts_argmax_hits():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])) == 0.5


def test_bits_per_symbol_of_a_uniform_guess_over_eight_symbols_is_three():
    logits = torch.zeros(4, 6, 8)
    targets = torch.randint(8, (4, 6))
    assert bits_per_symbol(logits, targets) == pytest.approx(3.0)
    assert perplexity(logits, targets) == pytest.approx(8.0)


def test_ignored_positions_do_not_count():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    targets = torch.tensor([0, -100])
    assert bits_per_symbol(logits, targets) == pytest.approx(1.0)
    assert perplexity(logits, targets) == pytest.approx(2.0)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="targets must have shape"):
        accuracy(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one"):
        bits_per_symbol(torch.zeros(2, 2), torch.full((2,), -100))
    assert math.isfinite(perplexity(torch.zeros(1, 2), torch.tensor([1])))


def test_bad_targets_and_logits_raise_value_errors_naming_them():
    logits = torch.zeros(4, 3)
    for fn in (accuracy, bits_per_symbol, perplexity):
        with pytest.raises(ValueError, match="targets must hold integer"):
            fn(logits, torch.zeros(4))
        with pytest.raises(ValueError, match="targets must be a torch"):
            fn(logits, [0, 1, 2, 0])
        with pytest.raises(ValueError, match="targets must have shape"):
            fn(logits, torch.zeros(3, dtype=torch.long))
        with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\]"):
            fn(logits, torch.tensor([0, 1, 2, 7]))
        with pytest.raises(ValueError, match="NaN"):
            fn(torch.full((4, 3), math.nan), torch.zeros(4, dtype=torch.long))


def test_perplexity_never_returns_nan_for_all_ignored_or_empty_targets():
    with pytest.raises(ValueError, match="at least one"):
        perplexity(torch.zeros(2, 3), torch.full((2,), -100))
    with pytest.raises(ValueError, match="at least one"):
        perplexity(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="overflows"):
        perplexity(torch.tensor([[1e4, -1e4]]), torch.tensor([1]))
