"""Tests of distill_lessons.text: corpus, byte tokenizer, split, batches."""

import json
import os

import pytest
import torch

from distill_lessons import text


def test_stdlib_dir_is_the_parent_of_the_json_package():
    json_dir = os.path.dirname(json.__file__)
    assert os.path.samefile(text.stdlib_dir(), os.path.dirname(json_dir))


def test_stdlib_files_are_sorted_top_level_python_files():
    files = text.stdlib_files()
    names = [f.name for f in files]
    assert names == sorted(names)
    assert all(
        f.suffix == ".py" and f.parent == text.stdlib_dir() for f in files
    )
    # A few modules every CPython ships at the top level.
    for expected in ("os.py", "random.py", "string.py"):
        assert expected in names


def test_default_corpus_is_the_concatenated_files_cut_at_max_bytes():
    expected = b"".join(f.read_bytes() for f in text.stdlib_files()[:3])
    data = text.read_text_bytes(max_bytes=len(expected) - 5)
    assert data == expected[:-5]


def test_default_corpus_repeats_exactly():
    assert text.read_text_bytes(max_bytes=5000) == text.read_text_bytes(
        max_bytes=5000
    )


def test_a_named_file_is_read_as_its_bytes(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_bytes(b"to be or not\n")
    assert text.read_text_bytes(path) == b"to be or not\n"
    assert text.read_text_bytes(path, max_bytes=5) == b"to be"
    assert text.read_text_bytes(str(path), max_bytes=None) == b"to be or not\n"


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        text.read_text_bytes(tmp_path / "nothing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        text.read_text_bytes(empty)
    with pytest.raises(ValueError, match="max_bytes"):
        text.read_text_bytes(max_bytes=0)


def test_tokenizer_numbers_the_bytes_present_in_increasing_order():
    tok = text.ByteTokenizer.from_data(b"cabbage")
    # distinct bytes a < b < c < e < g get ids 0..4
    assert len(tok) == tok.vocab_size == 5
    assert tok.encode(b"bag").tolist() == [1, 0, 4]
    assert tok.encode("ace").tolist() == [0, 2, 3]


def test_tokenizer_round_trips_bytes_and_utf8_text():
    data = "naïve café\n".encode()
    tok = text.ByteTokenizer.from_data(data)
    ids = tok.encode(data)
    # é and ï are two bytes each in UTF-8: 11 characters, 13 bytes
    assert ids.shape == (13,)
    assert tok.decode(ids) == data
    assert tok.decode_text(ids) == "naïve café\n"
    assert tok.decode(ids.tolist()) == data


def test_tokenizer_refuses_bytes_outside_its_vocabulary():
    tok = text.ByteTokenizer.from_data(b"abc")
    with pytest.raises(ValueError, match="outside the vocabulary.*'z'"):
        tok.encode(b"abz")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\]"):
        tok.decode(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="data must not be empty"):
        tok.encode(b"")
    with pytest.raises(ValueError, match="data must be bytes or str"):
        tok.encode([97])
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        text.ByteTokenizer([300])


def test_held_out_split_is_the_contiguous_end():
    ids = torch.arange(10)
    train, held = text.split_held_out(ids, 0.2)
    assert train.tolist() == list(range(8))
    assert held.tolist() == [8, 9]


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, "0.1", True])
def test_held_out_fraction_must_lie_strictly_between_0_and_1(bad):
    with pytest.raises(ValueError, match="held_out"):
        text.split_held_out(torch.arange(10), bad)


def test_a_text_too_short_to_split_is_refused():
    with pytest.raises(ValueError, match="too short"):
        text.split_held_out(torch.arange(3), 0.1)


def test_corpus_from_a_named_file_keeps_every_byte(tmp_path):
    path = tmp_path / "t.txt"
    data = b"abcdefghij" * 10
    path.write_bytes(data)
    corpus = text.load_corpus(path, held_out=0.1)
    assert corpus.vocab_size == 10
    assert len(corpus.train) == 90 and len(corpus.held_out) == 10
    whole = torch.cat([corpus.train, corpus.held_out])
    assert corpus.tokenizer.decode(whole) == data
    assert corpus.source == str(path)


def test_default_corpus_has_the_documented_sizes():
    corpus = text.load_corpus()
    raw = text.read_text_bytes()
    assert len(raw) == text.DEFAULT_MAX_BYTES
    assert corpus.vocab_size == len(set(raw))
    assert len(corpus.train) == 1_800_000
    assert len(corpus.held_out) == 200_000
    assert "standard library" in corpus.source


def test_windows_pair_each_token_with_the_next_one():
    ids = torch.arange(100, 120)
    inputs, targets = text.windows_at(ids, torch.tensor([[0, 5], [10, 3]]), 4)
    assert inputs.shape == targets.shape == (2, 2, 4)
    assert inputs[0, 1].tolist() == [105, 106, 107, 108]
    assert targets[0, 1].tolist() == [106, 107, 108, 109]


def test_windows_may_not_run_past_the_end():
    ids = torch.arange(10)
    text.windows_at(ids, torch.tensor([5]), 4)  # last legal start: 10-4-1
    with pytest.raises(ValueError, match="starts must lie in"):
        text.windows_at(ids, torch.tensor([6]), 4)
    with pytest.raises(ValueError, match="context"):
        text.windows_at(ids, torch.tensor([0]), 10)


def test_batch_starts_repeat_for_a_seed_and_stay_in_range():
    a = text.batch_starts(50, steps=30, batch_size=8, context=9, seed=3)
    b = text.batch_starts(50, steps=30, batch_size=8, context=9, seed=3)
    c = text.batch_starts(50, steps=30, batch_size=8, context=9, seed=4)
    assert a.shape == (30, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) <= 50 - 9 - 1
    # 240 draws from 41 starts: both ends are reached
    assert int(a.min()) == 0 and int(a.max()) == 40


def test_sample_windows_are_fixed_by_the_seed():
    ids = torch.arange(1000)
    x1, y1 = text.sample_windows(ids, 16, 8, seed=1234)
    x2, _ = text.sample_windows(ids, 16, 8, seed=1234)
    assert x1.shape == (16, 8)
    assert torch.equal(x1, x2)
    assert torch.equal(y1, x1 + 1)


def test_random_functions_insist_on_a_seed():
    with pytest.raises(ValueError, match="seed"):
        text.batch_starts(50, steps=1, batch_size=1, context=4, seed=None)


@pytest.mark.parametrize("ids", [[0.9, 1.9], [True, False], "ab", [[0, 1]]])
def test_decode_refuses_ids_that_are_not_integers(ids):
    tok = text.ByteTokenizer.from_data(b"abc")
    with pytest.raises(ValueError, match="ids must"):
        tok.decode(ids)
    with pytest.raises(ValueError, match="ids must"):
        tok.decode(torch.tensor([0.9, 1.9]))


@pytest.mark.parametrize(
    "values, found",
    [
        ([65.7, 66.2], "65.7"),
        ([65, True], "True"),
        ("AB", "got str 'AB'"),
        (torch.tensor([65.0, 66.0]), "got torch.float32"),
        (65, "got int"),
    ],
)
def test_the_tokenizer_refuses_byte_values_that_are_not_integers(
    values, found
):
    with pytest.raises(ValueError, match=f"byte_values must.*{found}"):
        text.ByteTokenizer(values)


def test_the_tokenizer_takes_bytes_sets_and_integer_tensors():
    expected = (65, 66)
    assert text.ByteTokenizer(b"BAB").byte_values == expected
    assert text.ByteTokenizer({66, 65}).byte_values == expected
    assert text.ByteTokenizer(torch.tensor([66, 65])).byte_values == expected
