"""Tests of distill_lessons.training: seeded loops that learn."""

import math

import pytest
import torch

from distill_lessons.models import RNNPredictor
from distill_lessons.training import fit, train_next_symbol


def test_a_predictor_learns_a_deterministic_cycle():
    stream = torch.tensor([0, 1, 2, 3] * 100)
    net = RNNPredictor(4, 16, seed=0)
    history = train_next_symbol(
        net, stream, steps=150, window=8, seed=0, progress=False
    )
    assert len(history) == 150
    # A uniform guess costs ln 4 nats; a learnt cycle costs almost nothing.
    assert history.losses[0] > 0.8 * math.log(4)
    assert history.losses[-1] < 0.05


def test_the_same_seed_repeats_the_run_bit_for_bit():
    stream = torch.randint(
        5, (300,), generator=torch.Generator().manual_seed(0)
    )
    runs = []
    for _ in range(2):
        net = RNNPredictor(5, 8, seed=1)
        runs.append(
            train_next_symbol(
                net, stream, steps=20, seed=7, progress=False
            ).losses
        )
    assert runs[0] == runs[1]


def test_the_callback_is_recorded_every_n_steps_and_at_the_end():
    net = torch.nn.Linear(1, 1)

    def loss_fn(step, g):
        return (net(torch.ones(1, 1)) - 1).pow(2).sum()

    history = fit(
        net,
        loss_fn,
        steps=7,
        seed=0,
        progress=False,
        callback=lambda step: step * 10,
        every=3,
    )
    assert history.records == {3: 30, 6: 60, 7: 70}


def test_bad_arguments_raise_clear_errors():
    net = RNNPredictor(3, 4)
    with pytest.raises(ValueError, match="steps"):
        train_next_symbol(
            net, torch.zeros(50, dtype=torch.long), steps=0, seed=0
        )
    with pytest.raises(ValueError, match="at least window"):
        train_next_symbol(
            net, torch.zeros(5, dtype=torch.long), steps=1, seed=0
        )
    with pytest.raises(ValueError, match="lr"):
        fit(net, lambda s, g: torch.tensor(0.0), steps=1, lr=-1, seed=0)
    with pytest.raises(ValueError, match="optimizer"):
        fit(
            net,
            lambda s, g: torch.tensor(0.0),
            steps=1,
            seed=0,
            optimizer="lbfgs",
        )


def test_a_diverging_loss_stops_with_a_clear_error():
    net = torch.nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="lower lr"):
        fit(
            net,
            lambda s, g: net.weight.sum() * float("nan"),
            steps=3,
            seed=0,
            progress=False,
        )


def test_a_callback_without_every_is_refused_rather_than_never_called():
    net = torch.nn.Linear(1, 1)

    def loss(s, g):
        return net.weight.sum() ** 2

    for every in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="every"):
            fit(net, loss, steps=2, seed=0, callback=lambda d: d, every=every)
    history = fit(
        net,
        loss,
        steps=2,
        seed=0,
        progress=False,
        callback=lambda d: d,
        every=1,
    )
    assert history.records == {1: 1, 2: 2}


@pytest.mark.parametrize(
    "loss_fn, message",
    [
        (lambda s, g: 1.0, "scalar tensor"),
        (lambda s, g: torch.ones(2, requires_grad=True), "scalar tensor"),
        (lambda s, g: torch.tensor(1.0), "no gradient"),
    ],
)
def test_a_loss_fn_that_returns_no_usable_loss_is_named(loss_fn, message):
    net = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match=message):
        fit(net, loss_fn, steps=1, seed=0, progress=False)


def test_wrong_kinds_of_model_or_loss_fn_raise_type_errors():
    with pytest.raises(TypeError, match="model must be"):
        fit(None, lambda s, g: None, steps=1, seed=0)
    with pytest.raises(TypeError, match="loss_fn must be"):
        fit(torch.nn.Linear(1, 1), None, steps=1, seed=0)
