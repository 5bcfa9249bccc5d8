"""Tests of distill_lessons.data: vocabulary and toy sequence generators."""

import pytest
import torch

from distill_lessons.data import (
    Vocabulary,
    chunk_stream,
    long_lag_episodes,
    long_lag_vocabulary,
)


def test_vocabulary_maps_symbols_to_ids_and_back():
    vocab = Vocabulary(["a", "x", "b1"])
    ids = vocab.encode(["x", "b1", "a", "x"])
    assert ids.tolist() == [1, 2, 0, 1]
    assert vocab.decode(ids) == ["x", "b1", "a", "x"]
    assert len(vocab) == 3 and "b1" in vocab and "b2" not in vocab


def test_vocabulary_rejects_an_unknown_symbol_and_names_it():
    vocab = Vocabulary("abc")
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        vocab.encode("abz")


def test_vocabulary_rejects_out_of_range_ids_empty_input_and_repeats():
    vocab = Vocabulary("abc")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\]"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="must not be empty"):
        vocab.encode([])
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary("aba")
    with pytest.raises(ValueError, match="at least one"):
        Vocabulary([])


def test_chunk_stream_is_made_of_whole_chunks_and_repeats_with_its_seed():
    ids, vocab = chunk_stream(500, chunks=("ab", "cde"), seed=3)
    text = "".join(vocab.decode(ids))
    assert len(text) == 500
    # Cut into chunks greedily by first letter: every piece must be a chunk,
    # except possibly the last one, which the length may cut short.
    pieces, i = [], 0
    while i < len(text):
        chunk = {"a": "ab", "c": "cde"}[text[i]]
        pieces.append(text[i : i + len(chunk)])
        i += len(chunk)
    assert all(p in ("ab", "cde") for p in pieces[:-1])
    again, _ = chunk_stream(500, chunks=("ab", "cde"), seed=3)
    other, _ = chunk_stream(500, chunks=("ab", "cde"), seed=4)
    assert torch.equal(ids, again) and not torch.equal(ids, other)


def test_chunk_stream_picks_chunks_about_equally_often():
    ids, vocab = chunk_stream(30_000, chunks=("ab", "cd"), seed=0)
    text = "".join(vocab.decode(ids))
    share_a = text.count("a") / (text.count("a") + text.count("c"))
    # 7,500 fair coin tosses: the share is within 0.02 of 1/2 with
    # overwhelming probability (more than 3 standard deviations).
    assert abs(share_a - 0.5) < 0.02


def test_noise_replaces_about_the_requested_share_of_symbols():
    clean, _ = chunk_stream(20_000, chunks=("abcdefgh",), seed=1)
    noisy, vocab = chunk_stream(
        20_000, chunks=("abcdefgh",), noise=0.2, seed=1
    )
    changed = (clean != noisy).float().mean().item()
    # A replaced symbol keeps its value with chance 1/8, so 0.2 * 7/8.
    assert abs(changed - 0.2 * 7 / 8) < 0.015
    assert len(vocab) == 8


def test_chunk_stream_refuses_bad_arguments():
    with pytest.raises(ValueError, match="length"):
        chunk_stream(0, seed=0)
    with pytest.raises(ValueError, match="noise"):
        chunk_stream(10, noise=1.5, seed=0)
    with pytest.raises(ValueError, match="distinct letters"):
        chunk_stream(10, chunks=("ab", "ac"), seed=0)
    with pytest.raises(ValueError, match="seed"):
        chunk_stream(10, seed=None)


def test_long_lag_episodes_follow_the_1992_task():
    vocab = long_lag_vocabulary(20)
    assert len(vocab) == 22 and vocab.symbols[:3] == ("a", "x", "b1")
    symbols, targets = long_lag_episodes(20, 64, seed=0)
    assert symbols.shape == (64, 21) and targets.shape == (64,)
    for row, target in zip(symbols, targets, strict=True):
        words = vocab.decode(row)
        assert words[0] in ("a", "x")
        assert words[1:] == [f"b{i}" for i in range(1, 21)]
        assert target == (1 if words[0] == "a" else 0)
    assert 0 < targets.sum() < 64


def test_noisy_long_lag_episodes_keep_opener_and_target():
    clean, t1 = long_lag_episodes(50, 200, seed=5)
    noisy, t2 = long_lag_episodes(50, 200, noise=0.3, seed=5)
    assert torch.equal(clean[:, 0], noisy[:, 0]) and torch.equal(t1, t2)
    changed = (clean[:, 1:] != noisy[:, 1:]).float().mean().item()
    assert abs(changed - 0.3 * 49 / 50) < 0.03
    assert noisy[:, 1:].min() >= 2


def test_long_lag_refuses_a_lag_below_one():
    with pytest.raises(ValueError, match="lag must be an integer >= 1"):
        long_lag_episodes(0, 4, seed=0)


def test_a_seed_too_large_for_64_bits_is_refused_by_name():
    with pytest.raises(ValueError, match="seed must lie in"):
        chunk_stream(10, seed=2**70)
    with pytest.raises(ValueError, match="seed must lie in"):
        long_lag_episodes(3, 2, seed=-(2**63) - 1)
    assert torch.equal(
        chunk_stream(10, seed=2**64 - 1)[0], chunk_stream(10, seed=-1)[0]
    )


def test_decode_refuses_floats_bools_and_strings_instead_of_rounding():
    vocab = Vocabulary("abc")
    assert vocab.decode([2, 0]) == ["c", "a"]
    for bad in ([1.9, 0.2], [True, False], "ab", [2**70]):
        with pytest.raises(ValueError, match="ids must"):
            vocab.decode(bad)


def test_a_single_string_is_not_taken_for_a_list_of_one_letter_chunks():
    with pytest.raises(ValueError, match="chunks must be a list of strings"):
        chunk_stream(10, chunks="abcd", seed=0)
    ids, vocab = chunk_stream(8, chunks=("abcd",), seed=0)
    assert vocab.decode(ids) == list("abcdabcd")


def test_every_integer_dtype_is_read_as_ids_and_bool_is_not():
    vocab = Vocabulary("abc")
    for dtype in (torch.int8, torch.uint8, torch.int16, torch.int32):
        assert vocab.decode(torch.tensor([2, 0], dtype=dtype)) == ["c", "a"]
    with pytest.raises(ValueError, match="ids must lie in"):
        vocab.decode(torch.tensor([-1], dtype=torch.int8))
    with pytest.raises(ValueError, match="integer ids"):
        vocab.decode(torch.tensor([True, False]))


def test_wrong_kinds_of_symbols_raise_type_errors_that_name_them():
    with pytest.raises(TypeError, match="symbols must be an iterable"):
        Vocabulary(None)
    vocab = Vocabulary("abc")
    for bad in (None, 3, torch.tensor([0, 1])):
        with pytest.raises(TypeError, match="symbols must be a string"):
            vocab.encode(bad)
    assert vocab.encode(("a", "c")).tolist() == [0, 2]
