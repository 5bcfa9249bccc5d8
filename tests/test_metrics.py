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
