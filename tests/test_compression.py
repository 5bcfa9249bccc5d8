"""Tests of distill_lessons.compression: lossless for any predictor."""

import math

import pytest
import torch

from distill_lessons.compression import (
    Compressed,
    compress,
    decompress,
    description_bits,
    ideal_code_bits,
    lzma_bits,
    raw_bits,
    zlib_bits,
)
from distill_lessons.models import RNNPredictor


class RepeatLast:
    """Predicts that the next symbol equals the current one."""

    def __init__(self, vocab_size):
        self.vocab_size = vocab_size

    def start(self):
        return None

    def step(self, symbol, state):
        logits = torch.zeros(self.vocab_size)
        logits[symbol] = 1.0
        return logits, state


class RandomTable:
    """A fixed random next-symbol table keyed by the last two symbols."""

    def __init__(self, vocab_size, seed):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(
            vocab_size, vocab_size, vocab_size, generator=g
        )

    def start(self):
        return 0

    def step(self, symbol, state):
        return self.table[state, symbol], symbol


def test_events_of_a_hand_worked_sequence():
    # Repeat-last predicts "same as now": changes of symbol are the events.
    seq = torch.tensor([2, 2, 2, 0, 0, 1, 1, 1])
    packed = compress(seq, RepeatLast(3))
    assert packed.events == ((0, 2), (3, 0), (5, 1))
    assert packed.length == 8 and packed.vocab_size == 3
    assert packed.fraction_passed == 3 / 8
    assert torch.equal(decompress(packed, RepeatLast(3)), seq)


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_is_exact_for_random_sequences_and_table_predictors(seed):
    g = torch.Generator().manual_seed(seed)
    vocab = int(torch.randint(2, 9, (1,), generator=g))
    length = int(torch.randint(1, 200, (1,), generator=g))
    seq = torch.randint(vocab, (length,), generator=g)
    predictor = RandomTable(vocab, seed)
    assert torch.equal(decompress(compress(seq, predictor), predictor), seq)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("seed", range(3))
def test_round_trip_is_exact_for_untrained_recurrent_predictors(cell, seed):
    g = torch.Generator().manual_seed(100 + seed)
    seq = torch.randint(6, (150,), generator=g)
    net = RNNPredictor(6, 8, cell=cell, seed=seed)
    assert torch.equal(decompress(compress(seq, net), net), seq)


def test_a_sequence_of_one_symbol_is_its_own_single_event():
    packed = compress([4], RepeatLast(5))
    assert packed.events == ((0, 4),)
    assert decompress(packed, RepeatLast(5)).tolist() == [4]


def test_a_perfect_predictor_passes_only_the_first_symbol():
    packed = compress(torch.full((50,), 1), RepeatLast(2))
    assert packed.events == ((0, 1),)


def test_description_bits_count_symbol_and_time_stamp_per_event():
    packed = Compressed(length=100, vocab_size=5, events=((0, 1), (7, 2)))
    # ceil(log2 5) = 3 bits per symbol, ceil(log2 100) = 7 bits per stamp.
    assert description_bits(packed) == 2 * (3 + 7)


def test_ideal_code_length_of_a_uniform_predictor_is_the_raw_size():
    class Uniform:
        def start(self):
            return None

        def step(self, symbol, state):
            return torch.zeros(4), state

    seq = torch.tensor([0, 3, 2, 1, 1, 0])
    assert ideal_code_bits(seq, Uniform()) == pytest.approx(12.0)
    assert raw_bits(6, 4) == pytest.approx(6 * math.log2(4))


def test_ideal_code_length_sums_the_surprise_of_each_symbol():
    # Repeat-last gives the current symbol e/(e+1) and every other one
    # 1/(e+1) in a two-symbol vocabulary.
    seq = torch.tensor([0, 0, 1])
    p_same = math.e / (math.e + 1)
    expected = 1.0 - math.log2(p_same) - math.log2(1 - p_same)
    assert ideal_code_bits(seq, RepeatLast(2)) == pytest.approx(expected)


def test_general_purpose_compressors_shrink_a_repetitive_sequence():
    seq = torch.tensor([0, 1, 2, 3] * 500)
    assert zlib_bits(seq) < raw_bits(len(seq), 4) / 10
    assert lzma_bits(seq) < raw_bits(len(seq), 4) / 10


def test_bad_inputs_raise_errors_that_name_the_problem():
    with pytest.raises(ValueError, match="at least one symbol"):
        compress([], RepeatLast(3))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\]"):
        compress([0, 1, 3], RepeatLast(3))
    with pytest.raises(ValueError, match="1 dimension"):
        compress(torch.zeros(2, 3, dtype=torch.long), RepeatLast(3))
    with pytest.raises(ValueError, match="integer ids"):
        compress(torch.zeros(3), RepeatLast(3))
    with pytest.raises(ValueError, match="Compressed"):
        decompress([(0, 1)], RepeatLast(3))
    with pytest.raises(ValueError, match="< 256"):
        zlib_bits([0, 300])


def test_a_list_of_floats_or_a_string_is_refused_not_truncated():
    for bad in ([0.5, 1.7, 2.2], [True, False], "abc", 7):
        with pytest.raises(ValueError, match="sequence must"):
            compress(bad, RepeatLast(3))
        with pytest.raises(ValueError, match="sequence must"):
            zlib_bits(bad)
    packed = compress((0, 1, 1, 2), RepeatLast(3))
    assert decompress(packed, RepeatLast(3)).tolist() == [0, 1, 1, 2]


class NaNPredictor(RepeatLast):
    """Predicts like RepeatLast, except that its logits are NaN."""

    def step(self, symbol, state):
        return torch.full((self.vocab_size,), math.nan), state


def test_a_predictor_returning_nan_logits_is_refused():
    with pytest.raises(ValueError, match="finite logits"):
        compress([0, 1, 2], NaNPredictor(3))
    with pytest.raises(ValueError, match="finite logits"):
        ideal_code_bits([0, 1, 2], NaNPredictor(3))


@pytest.mark.parametrize(
    "length, vocab_size, events, message",
    [
        (0, 3, ((0, 1),), "length"),
        (-5, 3, ((0, 1),), "length"),
        (3, 0, ((0, 1),), "vocab_size"),
        (3, 3, (), "non-empty"),
        (3, 3, ((1, 1),), "time step 0"),
        (2, 3, ((0, 1), (5, 2)), "below length"),
        (3, 3, ((0, 1), (2, 2), (1, 0)), "increase strictly"),
        (3, 3, ((0, 1), (1, 2), (1, 0)), "increase strictly"),
        (2, 3, ((0, 1.5),), "integer pairs"),
    ],
)
def test_a_hand_made_compressed_that_cannot_decode_is_refused(
    length, vocab_size, events, message
):
    with pytest.raises(ValueError, match=message):
        Compressed(length, vocab_size, events)


def test_description_bits_refuses_what_is_not_a_compressed():
    with pytest.raises(ValueError, match="Compressed"):
        description_bits(None)
    packed = Compressed(4, 3, [[0, 1], [2, 0]])
    assert packed.events == ((0, 1), (2, 0))
    assert description_bits(packed) == 2 * (2 + 2)


def test_decompress_refuses_event_symbols_outside_the_vocabulary():
    # A Compressed may carry placeholder symbols (the chunker's tests blank
    # lower levels with -1), but decoding one must not emit them.
    for symbol in (9, -1):
        packed = Compressed(2, 3, ((0, 1), (1, symbol)))
        with pytest.raises(ValueError, match=r"must lie in \[0, 2\]"):
            decompress(packed, RepeatLast(3))


def test_something_that_is_not_a_predictor_raises_a_type_error():
    packed = compress([0, 1], RepeatLast(2))
    for bad in (None, torch.nn.Linear(2, 2), lambda s: s):
        with pytest.raises(TypeError, match="predictor must have start"):
            compress([0, 1], bad)
        with pytest.raises(TypeError, match="predictor must have start"):
            decompress(packed, bad)
        with pytest.raises(TypeError, match="predictor must have start"):
            ideal_code_bits([0, 1], bad)
