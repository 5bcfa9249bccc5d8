"""Tests of distill_lessons.pretraining (chapter 3, pre-training section)."""

import math

import pytest
import torch

from distill_lessons import pretraining as pt

A, B, E, C, D, X = range(6)


def test_vocabulary_spells_the_six_symbols_in_id_order():
    vocab = pt.zif_vocabulary()
    assert vocab.encode("abecdx").tolist() == [0, 1, 2, 3, 4, 5]


def test_every_sequence_is_a_run_of_a_then_a_marker_then_c_then_d():
    data = pt.zif_sequences(64, first=(2, 5), second=(3, 6), seed=1)
    for row, length, label, at in zip(
        data.ids, data.lengths, data.labels, data.marker_at, strict=True
    ):
        n1 = int(at)
        n2 = int(length) - n1 - 2
        assert 2 <= n1 <= 5 and 3 <= n2 <= 6
        marker = B if label == 1.0 else E
        expected = [A] * n1 + [marker] + [C] * n2 + [D]
        assert row[: int(length)].tolist() == expected
        assert (row[int(length) :] == A).all()


def test_both_classes_occur_about_equally_often():
    data = pt.zif_sequences(2000, seed=0)
    # a fair coin over 2000 draws: 4 standard deviations is about 0.045
    assert abs(float(data.labels.mean()) - 0.5) < 0.045


def test_noise_one_replaces_every_inner_a_and_c_but_not_the_landmarks():
    data = pt.zif_sequences(16, first=(3, 4), second=(2, 3), noise=1.0, seed=2)
    for row, length, at in zip(
        data.ids, data.lengths, data.marker_at, strict=True
    ):
        n1, end = int(at), int(length) - 1
        assert row[0] == A
        assert (row[1:n1] == X).all()
        assert row[n1] in (B, E)
        assert (row[n1 + 1 : end] == X).all()
        assert row[end] == D


def test_same_seed_gives_the_same_sequences():
    one = pt.zif_sequences(8, noise=0.1, seed=5)
    two = pt.zif_sequences(8, noise=0.1, seed=5)
    assert torch.equal(one.ids, two.ids)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"batch": 0}, "batch"),
        ({"batch": 4, "first": (5, 2)}, "first"),
        ({"batch": 4, "second": (0, 3)}, "second"),
        ({"batch": 4, "noise": 1.5}, "noise"),
    ],
)
def test_bad_task_arguments_are_refused_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        pt.zif_sequences(seed=0, **kwargs)


def test_runs_of_a_seed_rnn_do_not_share_gradients():
    net = pt.SeedRNN([0, 1], 3, 4, 2)
    x = torch.randn(2, 5, 7, 3)
    out = net(x)
    out[0].sum().backward()
    for p in net.parameters():
        assert p.grad[1].abs().max() == 0
        assert p.grad[0].abs().max() > 0


def test_a_run_depends_only_on_its_own_seed():
    pair = pt.SeedRNN([4, 9], 3, 5, 2)
    alone = pt.SeedRNN([9], 3, 5, 2)
    x = torch.randn(1, 2, 6, 3)
    both = pair(torch.cat([torch.zeros_like(x), x]))
    assert torch.allclose(both[1:], alone(x), atol=1e-6)


def test_masked_steps_carry_the_state_over_unchanged():
    net = pt.SeedRNN([0], 2, 3, 1)
    x = torch.randn(1, 1, 5, 2)
    mask = torch.tensor([[[True, True, False, False, False]]])
    h = net.hidden_states(x, mask)
    short = net.hidden_states(x[:, :, :2])
    assert torch.allclose(h[:, :, -1], short[:, :, -1])


def test_clipping_scales_each_run_to_its_own_norm():
    net = pt.SeedRNN([0, 1], 1, 1, 1)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    # run 0: one gradient entry of 3 and one of 4, norm 5; run 1: norm 0.5
    net.w_in.grad[0, 0, 0] = 3.0
    net.b_h.grad[0, 0] = 4.0
    net.w_out.grad[1, 0, 0] = 0.5
    norms = net.clip_per_run_(1.0)
    assert torch.allclose(norms, torch.tensor([5.0, 0.5]))
    assert math.isclose(float(net.w_in.grad[0, 0, 0]), 0.6, rel_tol=1e-4)
    assert math.isclose(float(net.b_h.grad[0, 0]), 0.8, rel_tol=1e-4)
    assert float(net.w_out.grad[1, 0, 0]) == 0.5


def _always_predicts_a() -> pt.SeedRNN:
    net = pt.SeedRNN([0], 6, 2, 6)
    with torch.no_grad():
        net.w_out.zero_()
        net.b_out.zero_()
        net.b_out[0, A] = 5.0
    return net


def test_a_predictor_that_always_says_a_passes_on_every_other_symbol():
    data = pt.zif_sequences(4, first=(2, 3), second=(2, 4), seed=3)
    stacked = pt.ZifBatch(
        data.ids[None],
        data.lengths[None],
        data.labels[None],
        data.marker_at[None],
    )
    events = pt.surprises(_always_predicts_a(), stacked)[0]
    for row, ev, length in zip(data.ids, events, data.lengths, strict=True):
        n = int(length)
        # step 0 always; then every symbol that is not a; nothing after end
        expected = [True] + [s != A for s in row[1:n].tolist()]
        assert ev[:n].tolist() == expected
        assert not ev[n:].any()


def test_the_last_step_is_passed_on_even_when_it_was_predicted():
    ids = torch.tensor([[[A, A, A, A]]])
    data = pt.ZifBatch(
        ids, torch.tensor([[3]]), torch.tensor([[1.0]]), torch.tensor([[1]])
    )
    events = pt.surprises(_always_predicts_a(), data)
    assert events[0, 0].tolist() == [True, False, True, False]


def test_compressed_inputs_carry_symbol_and_decayed_time_unit():
    ids = torch.tensor([[[A, A, A, B, C, C, C, D]]])
    events = torch.tensor(
        [[[True, False, False, True, False, False, False, True]]]
    )
    data = pt.ZifBatch(
        ids, torch.tensor([[8]]), torch.tensor([[1.0]]), torch.tensor([[3]])
    )
    inputs, counts = pt.compressed_inputs(events, data, tau=2.0)
    assert counts.tolist() == [[3]]
    assert inputs.shape == (1, 1, 3, 7)
    # events at steps 0, 3 and 7: gaps 0, 3 and 4 raw steps
    units = [1.0, math.exp(-3 / 2.0), math.exp(-4 / 2.0)]
    for j, (symbol, unit) in enumerate(zip([A, B, D], units, strict=True)):
        expected = torch.zeros(7)
        expected[symbol] = 1.0
        expected[6] = unit
        assert torch.allclose(inputs[0, 0, j], expected, atol=1e-6)


def test_raw_inputs_keep_every_step_with_the_time_unit_at_zero():
    data = pt.stacked_sequences([torch.Generator().manual_seed(0)], 3)
    inputs, lengths = pt.raw_inputs(data)
    assert inputs.shape[-1] == 7
    assert (inputs[..., 6] == 0).all()
    assert torch.equal(inputs.sum(-1), data.mask.float())


def test_a_run_counts_as_solved_only_if_it_stays_above_threshold():
    runs = pt.ClassifierRuns(
        seeds=[0, 1, 2],
        sequences=[100, 200, 300, 400],
        accuracy=torch.tensor(
            [
                [0.50, 0.96, 0.90, 0.97],
                [0.96, 0.97, 0.98, 1.00],
                [0.96, 0.50, 0.50, 0.50],
            ]
        ),
        threshold=0.95,
        steps_per_sequence=1.0,
    )
    assert runs.sequences_to_solve == [400, 100, None]
    assert runs.solved.tolist() == [True, True, False]


def test_a_trained_predictor_leaves_three_events_on_the_clean_task():
    predictor = pt.train_predictors([0], steps=60)
    data = pt.stacked_sequences([torch.Generator().manual_seed(7)], 64)
    counts = pt.surprises(predictor, data).sum(-1)
    # only the first a, the marker and the end cannot be predicted
    assert (counts == 3).float().mean() >= 0.95


def test_mismatched_predictor_and_seeds_are_refused():
    predictor = pt.SeedRNN([0, 1], 6, 2, 6)
    with pytest.raises(ValueError, match="seeds"):
        pt.train_classifiers([0], predictor=predictor, sequences=32)
