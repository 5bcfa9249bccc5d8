"""Real text for the language-model chapters: a corpus, bytes to ids, batches.

Chapter 6 introduces the corpus (by default the Python standard library's
own top-level source files, so nothing is downloaded), the byte-level
:class:`ByteTokenizer`, the held-out split and seeded batch sampling;
chapters 7 and 8 reuse them.
"""

from __future__ import annotations

import json
import operator
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from distill_lessons._checks import (
    generator,
    id_tensor,
    long_tensor,
    positive_int,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ByteTokenizer",
    "Corpus",
    "stdlib_dir",
    "stdlib_files",
    "read_text_bytes",
    "load_corpus",
    "split_held_out",
    "sample_windows",
    "batch_starts",
    "windows_at",
]

DEFAULT_MAX_BYTES = 2_000_000
"""How much of the standard library the default corpus keeps (2 MB)."""


def stdlib_dir() -> Path:
    """The directory of the running Python's standard library.

    It is the parent of the ``json`` package's directory (the ``json``
    directory itself holds only that package, about 48 kB).
    """
    return Path(os.path.dirname(os.path.dirname(json.__file__)))


def stdlib_files() -> list[Path]:
    """The standard library's top-level ``*.py`` files, sorted by name.

    Only files directly in :func:`stdlib_dir` count, not packages below it,
    so the selection is fixed for a given Python version.
    """
    files = sorted(stdlib_dir().glob("*.py"), key=lambda p: p.name)
    if not files:
        raise FileNotFoundError(
            f"found no *.py files in the standard library at {stdlib_dir()}"
        )
    return files


def read_text_bytes(
    path: str | os.PathLike | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> bytes:
    """The raw bytes of the corpus, cut to ``max_bytes`` (``None``: all).

    With ``path=None`` this is the concatenation of :func:`stdlib_files`
    in sorted order: the same bytes on every machine with the same Python
    version (numbers in the book were measured on CPython 3.11). Otherwise
    it is the file at ``path``, read as bytes. Raises ``ValueError`` for an
    empty result and ``FileNotFoundError`` for a missing file.
    """
    if max_bytes is not None:
        positive_int("max_bytes", max_bytes)
    if path is None:
        parts: list[bytes] = []
        total = 0
        for f in stdlib_files():
            if max_bytes is not None and total >= max_bytes:
                break
            data = f.read_bytes()
            parts.append(data)
            total += len(data)
        data = b"".join(parts)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path must name a text file: {path}")
        data = path.read_bytes()
    if max_bytes is not None:
        data = data[:max_bytes]
    if not data:
        raise ValueError(f"the corpus at {path or stdlib_dir()} is empty")
    return data


class ByteTokenizer:
    """Maps the byte values that occur in a text to ids ``0 .. V-1``.

    Introduced in chapter 6. One byte is one token, so for ASCII text (the
    standard library is almost entirely ASCII) one token is one character
    and bits per token are bits per character. The vocabulary holds only
    the byte values seen when it was built, in increasing order; a byte
    outside it raises ``ValueError`` instead of being mapped to a default.

    ``byte_values`` is ``bytes`` or a collection of ints in [0, 255];
    floats, bools and strings are refused rather than truncated or parsed
    (build the vocabulary of a text with :meth:`from_data`).
    """

    def __init__(self, byte_values):
        values = sorted(set(_byte_values(byte_values)))
        if not values:
            raise ValueError("byte_values must hold at least one byte value")
        if values[0] < 0 or values[-1] > 255:
            raise ValueError(
                f"byte_values must lie in [0, 255], got {values[0]} to "
                f"{values[-1]}"
            )
        self.byte_values: tuple[int, ...] = tuple(values)
        # A lookup table from byte value to id; -1 marks unknown bytes.
        self._to_id = torch.full((256,), -1, dtype=torch.long)
        self._to_id[torch.tensor(values)] = torch.arange(len(values))
        self._to_byte = torch.tensor(values, dtype=torch.uint8)

    @classmethod
    def from_data(cls, data: bytes | str) -> ByteTokenizer:
        """The tokenizer whose vocabulary is the bytes present in ``data``."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            raise ValueError("data must not be empty")
        return cls(set(data))

    def __len__(self) -> int:
        return len(self.byte_values)

    @property
    def vocab_size(self) -> int:
        """The number of ids, ``V``."""
        return len(self.byte_values)

    def __repr__(self) -> str:
        return f"ByteTokenizer({len(self)} byte values)"

    def encode(self, data: bytes | str) -> torch.Tensor:
        """Ids ``(time,)`` of ``data`` (a ``str`` is encoded as UTF-8)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(
                f"data must be bytes or str, got {type(data).__name__}"
            )
        if not data:
            raise ValueError("data must not be empty")
        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
        ids = self._to_id[raw]  # (time,)
        unknown = ids < 0
        if unknown.any():
            missing = sorted(set(raw[unknown].tolist()))
            shown = ", ".join(repr(bytes([b])) for b in missing[:8])
            raise ValueError(
                f"data holds {len(missing)} byte value(s) outside the "
                f"vocabulary: {shown}{' ...' if len(missing) > 8 else ''}"
            )
        return ids

    def decode(self, ids: torch.Tensor | list[int]) -> bytes:
        """The bytes of 1-d ids ``(time,)``: a tensor or a list of ints."""
        ids = id_tensor("ids", ids, dims=1)
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(
                f"ids must lie in [0, {len(self) - 1}], got values from "
                f"{int(ids.min())} to {int(ids.max())}"
            )
        return bytes(self._to_byte[ids].tolist())

    def decode_text(self, ids: torch.Tensor | list[int]) -> str:
        """The text of ids; a byte sequence that is not UTF-8 shows as �."""
        return self.decode(ids).decode("utf-8", errors="replace")


def _byte_values(byte_values) -> list[int]:
    """The ints of ``byte_values``; floats, bools and strings refused."""
    if isinstance(byte_values, str):
        raise ValueError(
            "byte_values must be bytes or integers in [0, 255], got str "
            f"{byte_values!r:.40}; ByteTokenizer.from_data builds the "
            "vocabulary of a text"
        )
    if isinstance(byte_values, torch.Tensor):
        return long_tensor("byte_values", byte_values, dims=1).tolist()
    try:
        items = list(byte_values)
    except TypeError:
        raise ValueError(
            "byte_values must be bytes or a collection of integers in "
            f"[0, 255], got {type(byte_values).__name__}"
        ) from None
    values = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise TypeError
            values.append(operator.index(item))
        except TypeError:
            raise ValueError(
                f"byte_values must hold integers in [0, 255], got {item!r}"
            ) from None
    return values


@dataclass
class Corpus:
    """A tokenised text split into a training part and a held-out part.

    ``train`` and ``held_out`` are 1-d long tensors of ids; ``held_out`` is
    the end of the text, so (for the standard library) different files than
    the ones the models train on. ``source`` says where the text came from.
    """

    train: torch.Tensor
    held_out: torch.Tensor
    tokenizer: ByteTokenizer
    source: str

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


def split_held_out(
    ids: torch.Tensor, held_out: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut 1-d ids into the first ``1 - held_out`` and the last ``held_out``.

    A contiguous cut, not a random one: random windows would let the held-out
    text overlap the training text.
    """
    ids = long_tensor("ids", ids, dims=1)
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float)):
        raise ValueError(
            f"held_out must be a number in (0, 1), got {held_out!r}"
        )
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be in (0, 1), got {held_out!r}")
    cut = int(round(len(ids) * (1.0 - held_out)))
    if cut < 2 or len(ids) - cut < 2:
        raise ValueError(
            f"ids of length {len(ids)} are too short to keep at least two "
            f"tokens on each side of held_out={held_out}"
        )
    return ids[:cut], ids[cut:]


def load_corpus(
    path: str | os.PathLike | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    held_out: float = 0.1,
) -> Corpus:
    """Read, tokenise and split a corpus (default: the standard library).

    The vocabulary is built from the whole text (both parts), so every
    held-out byte can be encoded; the models still never train on the
    held-out part. With the defaults on CPython 3.11 this gives 2,000,000
    bytes, 104 distinct byte values, 1.8 M training and 0.2 M held-out ids.
    """
    data = read_text_bytes(path, max_bytes=max_bytes)
    tokenizer = ByteTokenizer.from_data(data)
    train, rest = split_held_out(tokenizer.encode(data), held_out)
    if path is None:
        source = (
            f"top-level *.py files of the standard library at {stdlib_dir()}"
        )
    else:
        source = str(path)
    return Corpus(train, rest, tokenizer, source)


def _check_window(ids: torch.Tensor, context: int) -> torch.Tensor:
    ids = long_tensor("ids", ids, dims=1)
    positive_int("context", context)
    if len(ids) < context + 1:
        raise ValueError(
            f"ids must hold more than context = {context} tokens, "
            f"got {len(ids)}"
        )
    return ids


def windows_at(
    ids: torch.Tensor, starts: torch.Tensor, context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets of windows starting at ``starts``.

    ``starts`` has any shape ``S``; both results have shape ``S + (context,)``
    and ``targets[..., t] == inputs[..., t + 1]`` inside a window.
    """
    ids = _check_window(ids, context)
    starts = long_tensor("starts", starts)
    if starts.numel() and (
        starts.min() < 0 or starts.max() > len(ids) - context - 1
    ):
        raise ValueError(
            f"starts must lie in [0, {len(ids) - context - 1}], got values "
            f"from {int(starts.min())} to {int(starts.max())}"
        )
    offsets = torch.arange(context + 1)
    chunk = ids[starts[..., None] + offsets]  # S + (context + 1,)
    return chunk[..., :-1], chunk[..., 1:]


def batch_starts(
    n_tokens: int,
    *,
    steps: int,
    batch_size: int,
    context: int,
    seed: int | torch.Generator,
) -> torch.Tensor:
    """Random window starts ``(steps, batch_size)`` for a stream of batches.

    Fixing the starts fixes the batches, so several students can see exactly
    the same text in the same order (the seed of the batch stream is kept
    apart from the seed of each model's initial weights).
    """
    positive_int("n_tokens", n_tokens)
    positive_int("steps", steps)
    positive_int("batch_size", batch_size)
    positive_int("context", context)
    if n_tokens < context + 1:
        raise ValueError(
            f"n_tokens must be more than context = {context}, got {n_tokens}"
        )
    g = generator(seed)
    return torch.randint(
        n_tokens - context, (steps, batch_size), generator=g
    )  # (steps, batch)


def sample_windows(
    ids: torch.Tensor,
    n: int,
    context: int,
    *,
    seed: int | torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random windows of ``ids``: inputs and targets, ``(n, context)``.

    Use it for a fixed evaluation set (same seed, same windows) or for one
    training batch.
    """
    ids = _check_window(ids, context)
    positive_int("n", n)
    starts = batch_starts(
        len(ids), steps=1, batch_size=n, context=context, seed=seed
    )[0]  # (n,)
    return windows_at(ids, starts, context)
