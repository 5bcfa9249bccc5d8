"""Tests of distill_lessons.lm: models, training loop, bits, teacher cache."""

import math

import pytest
import torch

from distill_lessons import lm, text

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2}


def periodic(n=400):
    """ids of "abcd" repeated: after one symbol the next is certain."""
    return torch.arange(4).repeat(n // 4)


def test_make_model_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = lm.make_model(7, TINY, context=8, seed=1)
    after = torch.rand(3)
    b = lm.make_model(7, TINY, context=8, seed=1)
    c = lm.make_model(7, TINY, context=8, seed=2)
    assert torch.equal(after, expected)
    assert torch.equal(a.tok.weight, b.tok.weight)
    assert not torch.equal(a.tok.weight, c.tok.weight)


def test_make_model_uses_pytorchs_default_initialisation():
    model = lm.make_model(50, lm.STUDENT, seed=0)
    # nn.Embedding draws N(0, 1); nn.Linear draws U(-1/sqrt(in), 1/sqrt(in))
    assert 0.9 < float(model.tok.weight.detach().std()) < 1.1
    bound = 1 / math.sqrt(64)
    assert float(model.head.weight.detach().abs().max()) <= bound
    assert model.context == 64 and model.n_layers == 2


def test_make_model_refuses_unknown_size_keys():
    with pytest.raises(ValueError, match="size"):
        lm.make_model(5, {"width": 3})
    with pytest.raises(ValueError, match="seed"):
        lm.make_model(5, TINY, seed=None)


def test_training_learns_a_periodic_text():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=150, batch_size=8, context=8, seed=0
    )
    model = lm.make_model(4, TINY, context=8, seed=0)
    x, y = text.sample_windows(ids, 16, 8, seed=1)
    before = lm.bits_per_token(model, x, y)
    history = lm.train_lm(model, ids, starts, lr=1e-2)
    assert len(history) == 150
    # each symbol is certain given the one before: 0 bits is reachable
    assert lm.bits_per_token(model, x, y) < 0.1 < before


def test_the_same_starts_give_the_same_run():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=5, batch_size=4, context=8, seed=0
    )
    runs = []
    for _ in range(2):
        model = lm.make_model(4, TINY, context=8, seed=3)
        runs.append(lm.train_lm(model, ids, starts, lr=1e-2).losses)
    assert runs[0] == runs[1]


def test_a_custom_loss_sees_the_step_the_logits_and_the_targets():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=3, batch_size=2, context=8, seed=0
    )
    seen = []

    def loss(step, logits, targets):
        seen.append((step, tuple(logits.shape), tuple(targets.shape)))
        return logits.square().mean()

    lm.train_lm(
        lm.make_model(4, TINY, context=8), ids, starts, lr=1e-3, loss=loss
    )
    assert seen == [(s, (2, 8, 4), (2, 8)) for s in range(3)]


def test_callback_runs_every_few_steps_and_at_the_end():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=5, batch_size=2, context=8, seed=0
    )
    model = lm.make_model(4, TINY, context=8)
    h = lm.train_lm(
        model, ids, starts, lr=1e-3, callback=lambda s: s * 10, every=2
    )
    assert h.records == {2: 20, 4: 40, 5: 50}


def test_decay_and_constant_learning_rates_differ_after_the_first_step():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=4, batch_size=2, context=8, seed=0
    )
    losses = [
        lm.train_lm(
            lm.make_model(4, TINY, context=8), ids, starts, lr=1e-2, decay=d
        ).losses
        for d in (False, True)
    ]
    # the schedule starts at lr, so the first two losses agree
    assert losses[0][:2] == losses[1][:2]
    assert losses[0][2:] != losses[1][2:]


def test_a_uniform_model_costs_log2_vocab_bits_per_token():
    model = lm.make_model(10, TINY, context=8)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    x = torch.randint(10, (5, 8), generator=torch.Generator().manual_seed(0))
    y = torch.randint(10, (5, 8), generator=torch.Generator().manual_seed(1))
    assert lm.bits_per_token(model, x, y, batch_size=2) == pytest.approx(
        math.log2(10), rel=1e-6
    )


def test_bits_do_not_depend_on_the_evaluation_batch_size():
    ids = periodic()
    model = lm.make_model(4, TINY, context=8, seed=4)
    x, y = text.sample_windows(ids, 10, 8, seed=0)
    assert lm.bits_per_token(model, x, y, batch_size=3) == pytest.approx(
        lm.bits_per_token(model, x, y, batch_size=10), rel=1e-6
    )


def test_bits_refuse_mismatched_shapes():
    model = lm.make_model(4, TINY, context=8)
    with pytest.raises(ValueError, match="targets must have the shape"):
        lm.bits_per_token(
            model, torch.zeros(2, 8).long(), torch.zeros(2, 7).long()
        )


def test_teacher_cache_holds_the_teachers_logits_for_each_batch():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=3, batch_size=2, context=8, seed=0
    )
    teacher = lm.make_model(4, TINY, context=8, seed=5)
    cache = lm.cache_teacher(teacher, ids, starts)
    assert cache.shape == (3, 2, 8, 4) and cache.dtype == torch.float16
    assert not cache.requires_grad
    x, _ = text.windows_at(ids, starts[1], 8)
    with torch.no_grad():
        expected = teacher(x)
    # half precision keeps about 3 significant digits
    torch.testing.assert_close(
        cache[1].float(), expected, rtol=2e-3, atol=2e-3
    )


def test_bits_count_only_the_positions_that_are_not_ignored():
    # A uniform model over 4 tokens costs 2 bits at every graded position,
    # however many targets are -100.
    model = lm.make_model(4, TINY, context=4)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    x = torch.zeros(2, 4, dtype=torch.long)
    y = torch.tensor([[1, -100, 2, -100], [-100, -100, 3, 0]])
    assert lm.bits_per_token(model, x, y) == pytest.approx(2.0, rel=1e-6)


def test_bits_refuse_targets_that_are_all_ignored_or_empty():
    model = lm.make_model(5, TINY, context=4)
    with pytest.raises(ValueError, match="targets must hold at least one"):
        lm.bits_per_token(
            model,
            torch.zeros(2, 4, dtype=torch.long),
            torch.full((2, 4), -100),
        )
    empty = torch.zeros(0, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="targets must hold at least one"):
        lm.bits_per_token(model, empty, empty)


def test_make_model_takes_a_generator_seed():
    a = lm.make_model(
        7, TINY, context=8, seed=torch.Generator().manual_seed(1)
    )
    b = lm.make_model(
        7, TINY, context=8, seed=torch.Generator().manual_seed(1)
    )
    assert torch.equal(a.tok.weight, b.tok.weight)


def test_teacher_cache_refuses_a_dtype_that_is_not_floating_point():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=2, batch_size=2, context=8, seed=0
    )
    teacher = lm.make_model(4, TINY, context=8)
    for dtype in (torch.long, torch.bool):
        with pytest.raises(ValueError, match="dtype must be a floating"):
            lm.cache_teacher(teacher, ids, starts, dtype=dtype)
    with pytest.raises(TypeError, match="dtype must be a torch.dtype"):
        lm.cache_teacher(teacher, ids, starts, dtype="float16")


def test_teacher_cache_refuses_logits_beyond_half_precision():
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=2, batch_size=2, context=8, seed=0
    )
    teacher = lm.make_model(4, TINY, context=8)
    with torch.no_grad():
        teacher.head.weight.zero_()
        teacher.head.bias.fill_(70000.0)  # every logit 70000 > 65504
    with pytest.raises(ValueError, match="pass dtype=torch.float32"):
        lm.cache_teacher(teacher, ids, starts)
    cache = lm.cache_teacher(teacher, ids, starts, dtype=torch.float32)
    assert (cache == 70000.0).all()


def _tiny_run(**kwargs):
    ids = periodic()
    starts = text.batch_starts(
        len(ids), steps=2, batch_size=2, context=8, seed=0
    )
    model = kwargs.pop("model", None) or lm.make_model(4, TINY, context=8)
    starts = kwargs.pop("starts", starts)
    return lm.train_lm(model, ids, starts, lr=1e-3, **kwargs)


def test_a_callback_needs_every_of_at_least_one():
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        _tiny_run(callback=lambda done: done, every=0)
    with pytest.raises(ValueError, match="every must be"):
        _tiny_run(callback=lambda done: done, every=-1)


def test_a_loss_that_is_not_a_scalar_is_refused():
    with pytest.raises(ValueError, match="loss must return a scalar"):
        _tiny_run(loss=lambda step, logits, targets: logits.mean(-1))


def test_weight_decay_must_be_a_number():
    with pytest.raises(ValueError, match="weight_decay must be a number"):
        _tiny_run(weight_decay="0.1")


def test_empty_starts_are_refused():
    with pytest.raises(ValueError, match="starts must hold at least one"):
        _tiny_run(starts=torch.zeros(0, 2, dtype=torch.long))


def test_training_refuses_a_model_without_a_context_window():
    from distill_lessons.models import RNNPredictor

    with pytest.raises(TypeError, match="model must be a TinyGPT"):
        _tiny_run(model=RNNPredictor(4))
