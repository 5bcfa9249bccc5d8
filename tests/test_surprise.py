"""Tests of distill_lessons.surprise, with values computed by hand."""

import math

import pytest
import torch

from distill_lessons.surprise import surprise_bits, unexpected


def logits_of(probs):
    return torch.log(torch.tensor(probs))


def test_surprise_of_a_known_distribution_in_bits():
    logits = logits_of([[0.5, 0.25, 0.125, 0.125]] * 3)
    bits = surprise_bits(logits, torch.tensor([0, 1, 3]))
    assert torch.allclose(bits, torch.tensor([1.0, 2.0, 3.0]), atol=1e-6)


def test_a_uniform_prediction_costs_log2_of_the_vocabulary():
    bits = surprise_bits(torch.zeros(5, 10), torch.arange(5))
    assert torch.allclose(bits, torch.full((5,), math.log2(10)))


def test_surprise_works_on_any_leading_shape_and_in_float32():
    logits = torch.zeros(2, 3, 4, dtype=torch.float64)
    bits = surprise_bits(logits, torch.zeros(2, 3, dtype=torch.long))
    assert bits.shape == (2, 3) and bits.dtype == torch.float32


def test_the_argmax_rule_flags_exactly_the_wrong_guesses():
    logits = logits_of([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    flags = unexpected(logits, torch.tensor([0, 2, 2]))
    assert flags.tolist() == [False, True, False]


def test_the_threshold_rule_flags_probabilities_below_it():
    logits = logits_of([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    flags = unexpected(logits, torch.tensor([0, 1]), threshold=0.65)
    assert flags.tolist() == [True, False]


def test_bad_inputs_raise_errors_that_name_the_problem():
    with pytest.raises(ValueError, match="targets must have shape"):
        surprise_bits(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\]"):
        surprise_bits(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer ids"):
        surprise_bits(torch.zeros(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="floating-point"):
        surprise_bits(
            torch.zeros(2, 4, dtype=torch.long), torch.tensor([0, 1])
        )
    with pytest.raises(ValueError, match="threshold"):
        unexpected(torch.zeros(2, 4), torch.tensor([0, 1]), threshold=2.0)


def test_nan_or_infinite_logits_are_refused_not_passed_on():
    targets = torch.tensor([0, 1])
    for bad in (float("nan"), float("inf")):
        logits = torch.zeros(2, 3)
        logits[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            surprise_bits(logits, targets)
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            unexpected(logits, targets)
    with pytest.raises(ValueError, match="all -inf"):
        surprise_bits(torch.full((2, 3), -math.inf), targets)
    # -inf for a symbol that did not come is a legitimate zero probability.
    logits = torch.tensor([[0.0, 0.0, -math.inf]])
    assert surprise_bits(logits, torch.tensor([0])).item() == 1.0


def test_the_surprise_plots_refuse_traces_that_do_not_match_labels():
    # The widgets draw surprise traces; a mismatch used to give a wrongly
    # labelled heat map or matplotlib's FixedLocator error.
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill_lessons import widgets

    bits = torch.tensor([1.0, 0.5, 2.0, 0.0])
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="symbols must hold one label"):
            widgets.plot_surprise_heatmap(ax, {0: bits, 5: bits}, ["a", "b"])
        with pytest.raises(ValueError, match="symbols must hold one label"):
            widgets.plot_surprise_trace(ax, bits, ["a"])
        with pytest.raises(ValueError, match="marks must hold one flag"):
            widgets.plot_surprise_trace(
                ax, bits, list("abcd"), marks=torch.tensor([True])
            )
        with pytest.raises(ValueError, match="1-d tensor"):
            widgets.plot_surprise_trace(ax, bits.tolist(), list("abcd"))
        with pytest.raises(ValueError, match="keyed by training steps"):
            widgets.plot_surprise_heatmap(ax, {"10": bits}, list("abcd"))
        with pytest.raises(ValueError, match="finite"):
            widgets.surprise_explorer({0: bits * math.nan}, list("abcd"))
        with pytest.raises(ValueError, match="at least one time step"):
            widgets.surprise_explorer({0: torch.zeros(0)}, [])
    finally:
        plt.close(fig)
