"""Tests of distill_lessons.models: the recurrent next-symbol predictor."""

import pytest
import torch

from distill_lessons.models import RNNPredictor


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_forward_gives_one_prediction_per_step(cell):
    net = RNNPredictor(7, 12, cell=cell, seed=0)
    logits = net(torch.randint(7, (3, 9)))
    assert logits.shape == (3, 9, 7)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stepping_one_symbol_at_a_time_matches_the_whole_sequence(cell):
    net = RNNPredictor(5, 8, cell=cell, seed=1)
    ids = torch.tensor([[0, 3, 1, 4, 2, 2]])
    whole = net(ids)[0]
    state, steps = net.start(), []
    for s in ids[0].tolist():
        logits, state = net.step(s, state)
        steps.append(logits)
    assert torch.allclose(torch.stack(steps), whole, atol=1e-5)


def test_a_prediction_never_depends_on_later_symbols():
    net = RNNPredictor(5, 8, seed=2)
    a = net(torch.tensor([[0, 1, 2, 3]]))
    b = net(torch.tensor([[0, 1, 4, 4]]))
    assert torch.equal(a[:, :2], b[:, :2])


def test_the_same_seed_gives_the_same_weights():
    a, b = RNNPredictor(5, 8, seed=3), RNNPredictor(5, 8, seed=3)
    c = RNNPredictor(5, 8, seed=4)
    pa, pb, pc = (
        torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c)
    )
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_bad_configuration_and_input_raise_clear_errors():
    with pytest.raises(ValueError, match="cell must be one of"):
        RNNPredictor(5, cell="transformer")
    with pytest.raises(ValueError, match="vocab_size"):
        RNNPredictor(0)
    net = RNNPredictor(5, 8)
    with pytest.raises(ValueError, match="2 dimension"):
        net(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\]"):
        net(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match="integer ids"):
        net(torch.zeros(1, 3))


def test_an_empty_sequence_is_refused_by_name():
    net = RNNPredictor(3, 4)
    for method in (net, net.hidden_states):
        with pytest.raises(ValueError, match="at least one time step"):
            method(torch.zeros(2, 0, dtype=torch.long))


@pytest.mark.parametrize(
    "symbol", [1.7, "2", True, None, torch.tensor([1, 2]), torch.tensor(1.0)]
)
def test_step_refuses_what_is_not_one_integer_id(symbol):
    with pytest.raises(ValueError, match="symbol must be one integer id"):
        RNNPredictor(3, 4).step(symbol)


def test_step_takes_python_and_tensor_integers_alike():
    net = RNNPredictor(3, 4)
    by_int, _ = net.step(2)
    by_tensor, _ = net.step(torch.tensor(2))
    torch.testing.assert_close(by_int, by_tensor)
