"""Tests of distill_lessons.chunker: hierarchy, chunker, automatiser."""

import pytest
import torch

from distill_lessons.chunker import (
    HistoryCompressor,
    LongLagConfig,
    LongLagSystem,
    SeedCell,
    sentence_stream,
    solved_at,
    train_long_lag,
    truncated_states,
    two_family_episodes,
    unroll,
)
from distill_lessons.compression import Compressed
from distill_lessons.data import Vocabulary, long_lag_episodes

SENTENCES = [
    ["fat", "cat", "sat"],
    ["rat", "bat", "hat", "mat"],
    ["pat", "vat"],
]


def _batch(lag, seeds, batch, seed=0):
    sym, tgt = long_lag_episodes(lag, seeds * batch, seed=seed)
    return sym.view(seeds, batch, -1), tgt.view(seeds, batch)


# -- bad configuration ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lag": 0}, "lag"),
        ({"lag": -3}, "lag"),
        ({"truncation": 0}, "truncation"),
        ({"truncation": 2.5}, "truncation"),
        ({"cell": "transformer"}, "cell"),
        ({"imitation": -1.0}, "imitation"),
        ({"tolerance": 1.5}, "tolerance"),
    ],
)
def test_bad_configuration_raises_a_value_error_naming_the_setting(
    kwargs, name
):
    with pytest.raises(ValueError, match=name):
        LongLagSystem(LongLagConfig(**kwargs), seeds=1, seed=0)


def test_truncated_states_refuses_a_window_below_one_step():
    cell = SeedCell(1, 4, 3, seed=torch.Generator().manual_seed(0))
    proj = cell.project(torch.zeros(1, 2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="truncation"):
        truncated_states(cell, proj, cell.initial(2), 0)


def test_an_unknown_cell_type_is_refused_by_the_cell_itself():
    with pytest.raises(ValueError, match="cell"):
        SeedCell(1, 4, 3, cell="elman", seed=torch.Generator())


# -- truncated backpropagation through time ------------------------------


@pytest.mark.parametrize("cell_type", ["rnn", "gru", "lstm"])
def test_truncated_states_have_the_values_of_the_full_unroll(cell_type):
    cell = SeedCell(
        2, 5, 4, cell=cell_type, seed=torch.Generator().manual_seed(1)
    )
    ids = torch.randint(5, (2, 3, 7), generator=torch.Generator())
    proj = cell.project(ids)
    full = unroll(cell, proj, cell.initial(3))
    window = truncated_states(cell, proj, cell.initial(3), 3)
    torch.testing.assert_close(window, full)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_vectorised_truncated_gradient_equals_a_naive_per_step_loop(k):
    torch.manual_seed(0)
    cell = SeedCell(2, 4, 3, seed=torch.Generator().manual_seed(2))
    readout = torch.randn(2, 3)
    ids = torch.randint(4, (2, 1, 6), generator=torch.Generator())
    steps = ids.shape[2]

    def loss_at(h, t):
        # A different smooth loss at each step, so that mistakes in which
        # window feeds which step would show.
        return ((h[..., :3] * readout[:, None]).sum() * (t + 1)).sin()

    states = truncated_states(cell, cell.project(ids), cell.initial(1), k)
    sum(loss_at(states[:, :, t], t) for t in range(steps)).backward()
    fast = [p.grad.clone() for p in cell.parameters()]

    # The textbook way: for every step, start from the detached state k
    # steps back and backpropagate through k applications only.
    cell.zero_grad()
    with torch.no_grad():
        stored = unroll(cell, cell.project(ids), cell.initial(1))
    for t in range(steps):
        first = max(0, t - k + 1)
        h = cell.initial(1) if first == 0 else stored[:, :, first - 1]
        h = h.detach()
        for tau in range(first, t + 1):
            h = cell(cell.project(ids[:, :, tau]), h)
        loss_at(h, t).backward()
    slow = [p.grad for p in cell.parameters()]
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_seeds_do_not_share_gradients():
    cell = SeedCell(3, 4, 3, seed=torch.Generator().manual_seed(0))
    ids = torch.randint(4, (3, 2, 5), generator=torch.Generator())
    states = unroll(cell, cell.project(ids), cell.initial(2))
    states[1].sum().backward()  # a loss on seed 1 alone
    for p in cell.parameters():
        assert p.grad[0].abs().max() == 0 and p.grad[2].abs().max() == 0
        assert p.grad[1].abs().max() > 0


# -- the chunker and the imitation term ----------------------------------


def test_chunker_state_changes_only_at_unexpected_events():
    system = LongLagSystem(LongLagConfig(lag=6), seeds=2, seed=0)
    sym, tgt = _batch(6, 2, 8)
    rec = system.forward_batch(sym, tgt)
    hc, events = rec.chunker_hidden, rec.events
    moved = (hc[:, :, 1:] - hc[:, :, :-1]).abs().amax(-1) > 0  # (S, B, T-1)
    assert torch.equal(moved & ~events[:, :, 1:], torch.zeros_like(moved))
    # An untrained automatiser mispredicts some symbols, so C does tick.
    assert (moved & events[:, :, 1:]).any()
    assert events[:, :, 0].all()  # the first symbol always goes up


def test_chunker_is_silent_between_events_once_a_predicts_them():
    # A stream with no surprises after the first symbol: every event mask
    # entry after step 0 is False, so C's state must hold still throughout.
    system = LongLagSystem(LongLagConfig(lag=4), seeds=1, seed=0)
    sym, tgt = _batch(4, 1, 3)
    events = torch.zeros(*sym.shape, dtype=torch.bool)
    events[:, :, 0] = True
    code = torch.zeros(*sym.shape, 2)
    hc = system._chunker(sym, events, code)[0]
    assert torch.equal(hc, hc[:, :, :1].expand_as(hc))


def test_no_gradient_reaches_the_chunker_through_the_imitation_term():
    system = LongLagSystem(LongLagConfig(lag=5), seeds=2, seed=0)
    rec = system.forward_batch(*_batch(5, 2, 4))
    rec.losses["imitation"].backward()
    for p in system.c_params:
        assert p.grad is None or p.grad.abs().max() == 0
    assert system.a_imitate.weight.grad.abs().max() > 0


def test_no_imitation_loss_when_lambda_is_zero():
    system = LongLagSystem(LongLagConfig(lag=5, imitation=0), seeds=1, seed=0)
    rec = system.forward_batch(*_batch(5, 1, 4))
    assert "imitation" not in rec.losses


def test_the_baseline_has_no_chunker():
    system = LongLagSystem(
        LongLagConfig(lag=5, chunker=False), seeds=1, seed=0
    )
    assert system.c_params == [] and system.opt_c is None
    rec = system.forward_batch(*_batch(5, 1, 4))
    assert set(rec.losses) == {"next", "target"}


def test_chunker_system_solves_a_short_lag_quickly():
    config = LongLagConfig(lag=5)
    result = train_long_lag(config, seeds=3, sequences=1600, seed=0)
    assert result.count("chunker") == 3
    # Once A predicts the b's, only the opening symbol and perhaps the
    # target step go up: at most 2 events in 6 steps.
    assert float(result.curves["events"][-1].max()) <= 2 / 6 + 1e-6


def test_rehearsal_with_stored_chunker_states_trains_only_the_automatiser():
    system = LongLagSystem(LongLagConfig(lag=4), seeds=2, seed=0)
    sym, tgt = _batch(4, 2, 4)
    stored = torch.zeros(2, 4, 5, system.config.chunker_hidden)
    before = system.a_imitate.weight.detach().clone()
    system.update(sym, tgt, rehearsal=(sym, tgt, stored))
    assert not torch.equal(system.a_imitate.weight, before)


# -- bookkeeping ---------------------------------------------------------


def test_solved_at_needs_the_accuracy_to_stay_high():
    acc = torch.tensor(
        [[0.5, 0.5, 1.0], [1.0, 0.5, 1.0], [0.5, 1.0, 1.0], [1.0, 1.0, 1.0]]
    )
    # Seed 0 dips after its first success, so it counts from step 3 only;
    # seed 1 is solved from step 2 on; seed 2 from the start.
    assert solved_at(acc, [0, 10, 20, 30]) == [30, 20, 0]
    assert solved_at(torch.tensor([[1.0], [0.9]]), [0, 5]) == [None]


def test_second_family_shifts_the_middle_and_keeps_the_target():
    sym0, tgt0 = two_family_episodes(3, 6, family=0, seed=4)
    sym1, tgt1 = two_family_episodes(3, 6, family=1, seed=4)
    assert torch.equal(sym1[:, 0], sym0[:, 0])  # same openers
    assert sym1[0, 1:].tolist() == [5, 6, 7]  # c1..c3 after b1..b3 (2..4)
    assert torch.equal(tgt1, tgt0)
    with pytest.raises(ValueError, match="family"):
        two_family_episodes(3, 2, family=2, seed=0)


# -- the multi-level history compressor ----------------------------------


@pytest.fixture(scope="module")
def hierarchy():
    text = sentence_stream(1500, sentences=SENTENCES, end=" ", seed=0)
    vocab = Vocabulary(sorted(set(text)))
    comp = HistoryCompressor(len(vocab), hidden=32, max_levels=3, seed=0)
    comp.fit(vocab.encode(text), window=(2, 12, 12), steps=400)
    return comp, vocab


def test_hierarchy_compression_is_lossless(hierarchy):
    comp, vocab = hierarchy
    fresh = vocab.encode(
        sentence_stream(300, sentences=SENTENCES, end=" ", seed=9)
    )
    codes = comp.compress(fresh)
    assert len(codes) == len(comp.levels)
    torch.testing.assert_close(comp.decompress(codes), fresh)


def test_hierarchy_decoding_needs_only_top_symbols_and_time_stamps(
    hierarchy,
):
    comp, vocab = hierarchy
    fresh = vocab.encode(
        sentence_stream(200, sentences=SENTENCES, end=" ", seed=3)
    )
    codes = comp.compress(fresh)
    # Blank every symbol below the top: the decoder must not read them.
    blanked = [
        Compressed(c.length, c.vocab_size, tuple((t, -1) for t in c.times))
        for c in codes[:-1]
    ] + [codes[-1]]
    torch.testing.assert_close(comp.decompress(blanked), fresh)


def test_each_level_passes_on_fewer_steps_than_the_one_below(hierarchy):
    comp, _ = hierarchy
    assert len(comp.fractions) >= 2
    assert all(
        b < a for a, b in zip(comp.fractions, comp.fractions[1:], strict=False)
    )


def test_first_level_events_are_word_starts(hierarchy):
    comp, vocab = hierarchy
    text = sentence_stream(300, sentences=SENTENCES, end=" ", seed=5)
    first = comp.compress(vocab.encode(text))[0]
    # Inside a word every letter follows from the one before ("?at"), so a
    # trained first level may only be surprised where a word begins.
    starts = {0} | {i + 1 for i, ch in enumerate(text) if ch == " "}
    assert set(first.times) <= starts


# -- bad input found by testing ------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"imitation": float("inf")}, "imitation"),
        ({"imitation": float("nan")}, "imitation"),
        ({"imitation": "10"}, "imitation"),
        ({"forget_bias": float("nan")}, "forget_bias"),
        ({"forget_bias": float("-inf")}, "forget_bias"),
        ({"chunker": "no"}, "chunker must be True or False"),
        ({"chunker": 1}, "chunker must be True or False"),
        ({"time_code": "yes"}, "time_code must be True or False"),
    ],
)
def test_config_refuses_non_finite_weights_and_non_bool_flags(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LongLagConfig(**kwargs).check()


def test_train_long_lag_takes_a_generator_as_seed():
    config = LongLagConfig(lag=3, batch=4)

    def run():
        g = torch.Generator().manual_seed(7)
        return train_long_lag(config, seeds=1, sequences=16, seed=g)

    a, b = run(), run()
    assert a.sequences == b.sequences == [0, 4, 8, 12, 16]
    for key in a.curves:
        assert torch.equal(a.curves[key], b.curves[key])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"eval_every": -1}, "eval_every"),
        ({"eval_every": 0}, "eval_every"),
        ({"eval_every": 2.5}, "eval_every"),
        ({"stop_when_solved": "automatiser"}, "stop_when_solved"),
        ({"stop_when_solved": "yes"}, "stop_when_solved"),
        ({"stop_when_solved": 1}, "stop_when_solved"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_train_long_lag_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        train_long_lag(LongLagConfig(lag=3), seeds=1, sequences=16, **kwargs)


@pytest.mark.parametrize(
    "sentences",
    [
        ["ab", "cd"],
        "fat cat sat",
        [["fat", "cat"], "rat bat"],
        [],
        [[]],
        [["fat", ""]],
        [["fat", 3]],
        None,
    ],
)
def test_sentence_stream_refuses_what_is_not_lists_of_words(sentences):
    with pytest.raises(ValueError, match="sentences"):
        sentence_stream(10, sentences=sentences, seed=0)


def test_sentence_stream_needs_a_string_end():
    with pytest.raises(ValueError, match="end"):
        sentence_stream(10, sentences=SENTENCES, end=None, seed=0)


def test_sentence_stream_spells_lists_of_words():
    # one sentence: "ab cd" then the end ". "
    assert sentence_stream(9, sentences=[["ab", "cd"]], seed=0) == list(
        "ab cd. ab"
    )


def test_decompress_before_fit_says_to_call_fit_first():
    comp = HistoryCompressor(4)
    with pytest.raises(ValueError, match=r"fit\(\) must run"):
        comp.decompress([])


def test_decompress_refuses_codes_that_compress_did_not_make(hierarchy):
    comp, _ = hierarchy
    with pytest.raises(ValueError, match="codes"):
        comp.decompress("abc")
    with pytest.raises(ValueError, match="codes"):
        comp.decompress([1] * len(comp.levels))


def test_history_compressor_takes_a_generator_as_seed():
    a = HistoryCompressor(4, seed=torch.Generator().manual_seed(3))
    b = HistoryCompressor(4, seed=torch.Generator().manual_seed(3))
    assert isinstance(a.seed, int) and a.seed == b.seed
    with pytest.raises(ValueError, match="seed"):
        HistoryCompressor(4, seed="0")
