"""Lossless history compression with a predictor (the 1991 principle).

Chapter 2 introduces it. :func:`compress` keeps only the symbols the
predictor failed to predict, with their time steps; :func:`decompress`
replays the predictor and rebuilds the whole sequence from them. The size
functions set the result against zlib and lzma on the same symbols.

A predictor is any object with two methods, deterministic in their inputs:

* ``start()`` returns the state before the first symbol;
* ``step(symbol, state)`` reads one symbol id and returns
  ``(logits, state)``, with ``logits`` of shape ``(vocab,)`` scoring the
  next symbol.

:class:`~distill_lessons.models.RNNPredictor` is one, trained or not.
"""

from __future__ import annotations

import lzma
import math
import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill_lessons._checks import id_tensor, positive_int

__all__ = [
    "Compressed",
    "compress",
    "decompress",
    "description_bits",
    "ideal_code_bits",
    "raw_bits",
    "zlib_bits",
    "lzma_bits",
]


@dataclass(frozen=True)
class Compressed:
    """What :func:`compress` keeps of a sequence.

    ``events`` lists ``(time_step, symbol_id)`` for every unexpected symbol,
    in time order; the first symbol always opens the list, since nothing
    predicts it. ``length`` and ``vocab_size`` are all else the decoder
    needs besides the predictor itself.
    """

    length: int
    vocab_size: int
    events: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        positive_int("length", self.length)
        positive_int("vocab_size", self.vocab_size)
        try:
            events = tuple(tuple(e) for e in self.events)
        except TypeError:
            events = ()
        if not events or any(len(e) != 2 for e in events):
            raise ValueError(
                "events must be a non-empty list of (time_step, symbol_id) "
                "pairs"
            )
        times = [t for t, _ in events]
        if times[0] != 0:
            raise ValueError("events must start with time step 0")
        for t, s in events:
            for v in (t, s):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(
                        f"events must hold integer pairs, got {(t, s)!r}"
                    )
        ordered = all(a < b for a, b in zip(times, times[1:], strict=False))
        if not ordered or times[-1] >= self.length:
            raise ValueError(
                "event time steps must increase strictly and stay below "
                f"length = {self.length}, got {times}"
            )
        object.__setattr__(self, "events", events)

    @property
    def times(self) -> list[int]:
        """Time steps of the events."""
        return [t for t, _ in self.events]

    @property
    def symbols(self) -> list[int]:
        """Symbol ids of the events."""
        return [s for _, s in self.events]

    @property
    def fraction_passed(self) -> float:
        """The share of time steps that were passed on as events."""
        return len(self.events) / self.length


def _check_sequence(sequence, vocab_size: int | None = None) -> torch.Tensor:
    ids = id_tensor("sequence", sequence, dims=1)
    if ids.numel() == 0:
        raise ValueError("sequence must hold at least one symbol, got none")
    if ids.min() < 0:
        raise ValueError(f"sequence ids must be >= 0, got {int(ids.min())}")
    if vocab_size is not None and ids.max() >= vocab_size:
        raise ValueError(
            f"sequence ids must lie in [0, {vocab_size - 1}], "
            f"got {int(ids.max())}"
        )
    return ids


def _check_predictor(predictor) -> None:
    if not (
        callable(getattr(predictor, "start", None))
        and callable(getattr(predictor, "step", None))
    ):
        raise TypeError(
            "predictor must have start() and step(symbol, state) methods "
            f"(an RNNPredictor, for one), got {type(predictor).__name__}"
        )


def _logits_of(output, vocab_size: int | None) -> torch.Tensor:
    logits, state = output
    logits = torch.as_tensor(logits)
    if logits.dim() != 1:
        raise ValueError(
            "predictor.step must return logits of shape (vocab,), "
            f"got {tuple(logits.shape)}"
        )
    if logits.isnan().any() or logits.isposinf().any():
        raise ValueError(
            "predictor.step must return finite logits (or -inf for "
            f"impossible symbols), got {logits.tolist()}"
        )
    if vocab_size is not None and logits.shape[0] != vocab_size:
        raise ValueError(
            f"predictor.step returned {logits.shape[0]} logits, expected "
            f"vocab_size = {vocab_size}"
        )
    return logits, state


def compress(sequence, predictor) -> Compressed:
    """The unexpected events of ``sequence`` under ``predictor``.

    ``sequence``: a 1-d long tensor (or list) of symbol ids, ``(time,)``.
    A symbol is unexpected when the predictor's most likely next symbol
    (argmax) is not the one that came; the first symbol always is.

    Raises ``ValueError`` for an empty sequence, a sequence that is not 1-d
    integer ids, or an id the predictor's vocabulary does not cover.
    """
    ids = _check_sequence(sequence)
    _check_predictor(predictor)
    first = int(ids[0])
    logits, state = _logits_of(predictor.step(first, predictor.start()), None)
    vocab_size = logits.shape[0]
    _check_sequence(ids, vocab_size)

    events = [(0, first)]
    for t in range(1, len(ids)):
        symbol = int(ids[t])
        if int(logits.argmax()) != symbol:
            events.append((t, symbol))
        if t < len(ids) - 1:
            logits, state = _logits_of(
                predictor.step(symbol, state), vocab_size
            )
    return Compressed(len(ids), vocab_size, tuple(events))


def decompress(compressed: Compressed, predictor) -> torch.Tensor:
    """Rebuild the whole sequence ``(time,)`` from its events.

    Between events the decoder feeds the predictor its own most likely
    symbol; at an event it feeds the stored one. With the same deterministic
    predictor as :func:`compress` this returns exactly the original ids.
    """
    if not isinstance(compressed, Compressed):
        raise ValueError(
            "compressed must be a Compressed from compress(), got "
            f"{type(compressed).__name__}"
        )

    _check_predictor(predictor)
    bad = [
        e for e in compressed.events if not 0 <= e[1] < compressed.vocab_size
    ]
    if bad:
        raise ValueError(
            "compressed.events symbols must lie in "
            f"[0, {compressed.vocab_size - 1}], got {bad[0]}"
        )
    pending = dict(compressed.events)
    out = [pending[0]]
    logits, state = _logits_of(
        predictor.step(out[0], predictor.start()), compressed.vocab_size
    )
    for t in range(1, compressed.length):
        symbol = pending.get(t, int(logits.argmax()))
        out.append(symbol)
        if t < compressed.length - 1:
            logits, state = _logits_of(
                predictor.step(symbol, state), compressed.vocab_size
            )
    return torch.tensor(out, dtype=torch.long)


def description_bits(compressed: Compressed) -> int:
    """Bits to write the events down plainly.

    Each event costs ``ceil(log2 vocab_size)`` bits for its symbol and
    ``ceil(log2 length)`` bits for its time stamp. The few bits of a header
    (the length itself) are left out here, as they are for zlib and lzma.
    """
    if not isinstance(compressed, Compressed):
        raise ValueError(
            "compressed must be a Compressed from compress(), got "
            f"{type(compressed).__name__}"
        )
    symbol_bits = math.ceil(math.log2(compressed.vocab_size))
    time_bits = math.ceil(math.log2(compressed.length))
    return len(compressed.events) * (symbol_bits + time_bits)


@torch.no_grad()
def ideal_code_bits(sequence, predictor) -> float:
    """Bits an ideal arithmetic coder driven by ``predictor`` would need.

    The first symbol costs ``log2 vocab`` (nothing predicts it); every later
    symbol costs its surprise, ``-log2 p(symbol)``. A real arithmetic coder
    gets within two bits of this total.
    """
    ids = _check_sequence(sequence)
    _check_predictor(predictor)
    logits, state = _logits_of(
        predictor.step(int(ids[0]), predictor.start()), None
    )
    vocab_size = logits.shape[0]
    _check_sequence(ids, vocab_size)

    total = math.log2(vocab_size)
    for t in range(1, len(ids)):
        log_p = F.log_softmax(logits.float(), dim=-1)[int(ids[t])]
        total -= float(log_p) / math.log(2.0)
        if t < len(ids) - 1:
            logits, state = _logits_of(
                predictor.step(int(ids[t]), state), vocab_size
            )
    return total


def raw_bits(length: int, vocab_size: int) -> float:
    """Bits of the sequence with no model at all: ``length * log2 vocab``."""
    positive_int("length", length)
    positive_int("vocab_size", vocab_size)
    return length * math.log2(vocab_size)


def _as_bytes(sequence) -> bytes:
    ids = _check_sequence(sequence)
    if ids.max() > 255:
        raise ValueError(
            f"sequence ids must be < 256 to be written one byte each, "
            f"got {int(ids.max())}"
        )
    return bytes(ids.tolist())


def zlib_bits(sequence) -> int:
    """Bits of raw deflate (zlib level 9, no header) of one byte per symbol."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = packer.compress(_as_bytes(sequence)) + packer.flush()
    return 8 * len(data)


def lzma_bits(sequence) -> int:
    """Bits of raw LZMA2 (preset 9, extreme, no header) of the same bytes."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    data = lzma.compress(
        _as_bytes(sequence), format=lzma.FORMAT_RAW, filters=filters
    )
    return 8 * len(data)
