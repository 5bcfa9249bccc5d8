"""Seeded toy sequences for Part I of the book, and the vocabulary they use.

Chapter 1 introduces :class:`Vocabulary` and :func:`chunk_stream`; chapter 3
introduces the long-lag task of the 1992 paper (:func:`long_lag_episodes`).
Every generator takes ``seed=`` (an int or a ``torch.Generator``) and gives
the same symbols for the same seed on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from distill_lessons._checks import (
    generator,
    id_tensor,
    positive_int,
    probability,
)

__all__ = [
    "Vocabulary",
    "DEFAULT_CHUNKS",
    "chunk_stream",
    "long_lag_vocabulary",
    "long_lag_episodes",
]


class Vocabulary:
    """A fixed list of symbols, each mapped to an integer id and back.

    Introduced in chapter 1. Symbols are strings (a symbol may be longer
    than one character, like ``"b12"``). Unknown symbols and out-of-range ids
    raise ``ValueError``; nothing is ever silently mapped to a default.
    """

    def __init__(self, symbols: Iterable[str]):
        try:
            symbols = list(symbols)
        except TypeError:
            raise TypeError(
                "symbols must be an iterable of strings, got "
                f"{type(symbols).__name__}"
            ) from None
        if not symbols:
            raise ValueError("symbols must hold at least one symbol, got none")
        for s in symbols:
            if not isinstance(s, str) or s == "":
                raise ValueError(
                    f"symbols must be non-empty strings, got {s!r}"
                )
        if len(set(symbols)) != len(symbols):
            repeated = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"symbols must be distinct; repeated: {repeated}")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        shown = " ".join(self.symbols[:12])
        more = " ..." if len(self) > 12 else ""
        return f"Vocabulary({len(self)} symbols: {shown}{more})"

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def index(self, symbol: str) -> int:
        """The id of one symbol."""
        try:
            return self._ids[symbol]
        except (KeyError, TypeError):
            raise ValueError(
                f"symbol {symbol!r} is not in the vocabulary "
                f"({len(self)} symbols: {' '.join(self.symbols[:12])}"
                f"{' ...' if len(self) > 12 else ''})"
            ) from None

    def encode(self, symbols: Sequence[str] | str) -> torch.Tensor:
        """Ids of a sequence of symbols, as a 1-d long tensor ``(time,)``.

        A plain string is read one character per symbol.
        """
        if isinstance(symbols, torch.Tensor) or not isinstance(
            symbols, (str, Sequence)
        ):
            raise TypeError(
                "symbols must be a string or a list of symbols (use decode "
                f"for ids), got {type(symbols).__name__}"
            )
        if len(symbols) == 0:
            raise ValueError("symbols must not be empty")
        return torch.tensor([self.index(s) for s in symbols], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Symbols of a 1-d sequence of ids."""
        ids = id_tensor("ids", ids, dims=1)
        bad = (ids < 0) | (ids >= len(self))
        if bad.any():
            first = int(ids[bad][0])
            raise ValueError(
                f"ids must lie in [0, {len(self) - 1}], got {first}"
            )
        return [self.symbols[i] for i in ids.tolist()]


DEFAULT_CHUNKS: tuple[str, ...] = ("abcd", "efg", "hijkl", "mno")
"""The chunks of :func:`chunk_stream`: each starts with its own letter."""


def chunk_stream(
    length: int,
    *,
    chunks: Sequence[str] = DEFAULT_CHUNKS,
    noise: float = 0.0,
    seed: int | torch.Generator,
) -> tuple[torch.Tensor, Vocabulary]:
    """A stream of deterministic chunks picked at random, and its vocabulary.

    Introduced in chapter 1. The stream concatenates chunks drawn uniformly
    from ``chunks`` (one character per symbol) and is cut to ``length``
    symbols. Inside a chunk every symbol follows from the one before; only
    the first symbol of each chunk is a coin toss. So a good predictor is
    surprised about once per chunk and almost never elsewhere.

    With ``noise > 0`` every symbol is, with that probability, replaced by a
    symbol drawn uniformly from the whole vocabulary (the noisy variant).

    Returns ``(ids, vocab)`` with ``ids`` a long tensor of shape
    ``(length,)``. Raises ``ValueError`` for a length below 1, a noise
    outside [0, 1], or chunks that are empty or share a first letter.
    """
    positive_int("length", length)
    probability("noise", noise)
    if isinstance(chunks, str):
        raise ValueError(
            f"chunks must be a list of strings, got the single string "
            f"{chunks!r}; write ({chunks!r},) for one chunk"
        )
    chunks = list(chunks)
    if not chunks or any(not isinstance(c, str) or not c for c in chunks):
        raise ValueError(f"chunks must be non-empty strings, got {chunks!r}")
    firsts = [c[0] for c in chunks]
    if len(set(firsts)) != len(firsts):
        raise ValueError(
            f"chunks must start with distinct letters, got firsts {firsts}"
        )
    g = generator(seed)
    vocab = Vocabulary(sorted({ch for c in chunks for ch in c}))

    coded = [vocab.encode(c) for c in chunks]
    mean_len = sum(len(c) for c in chunks) / len(chunks)
    parts: list[torch.Tensor] = []
    total = 0
    while total < length:
        n = int((length - total) / mean_len) + 2
        picks = torch.randint(len(chunks), (n,), generator=g)
        for k in picks.tolist():
            parts.append(coded[k])
            total += len(coded[k])
    ids = torch.cat(parts)[:length]  # (length,)

    if noise > 0:
        flip = torch.rand(length, generator=g) < noise
        random_ids = torch.randint(len(vocab), (length,), generator=g)
        ids = torch.where(flip, random_ids, ids)
    return ids, vocab


def long_lag_vocabulary(lag: int) -> Vocabulary:
    """Symbols of the long-lag task: ``a``, ``x``, then ``b1`` ... ``b<lag>``.

    Introduced in chapter 3. With ``lag = 20`` this is the 22-symbol
    alphabet of the 1992 experiment.
    """
    positive_int("lag", lag)
    return Vocabulary(["a", "x"] + [f"b{i}" for i in range(1, lag + 1)])


def long_lag_episodes(
    lag: int,
    batch: int,
    *,
    noise: float = 0.0,
    seed: int | torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of episodes of the 1992 long-lag task.

    Introduced in chapter 3. Each episode opens with ``a`` or ``x`` (a fair
    coin), then runs ``b1 b2 ... b<lag>``; at the end a target says which
    symbol opened it (1 for ``a``, 0 for ``x``). Ids follow
    :func:`long_lag_vocabulary`: ``a`` is 0, ``x`` is 1, ``b<i>`` is
    ``i + 1``.

    With ``noise > 0`` (the noisy variant) each ``b<i>`` is, with that
    probability, replaced by a ``b`` drawn uniformly at random, so the
    middle of the episode is no longer perfectly predictable.

    Returns ``(symbols, targets)``: ``symbols`` is a long tensor of shape
    ``(batch, lag + 1)`` and ``targets`` a long tensor of shape ``(batch,)``.
    """
    positive_int("lag", lag)
    positive_int("batch", batch)
    probability("noise", noise)
    g = generator(seed)

    opener = torch.randint(2, (batch,), generator=g)  # 0 is a, 1 is x
    middle = torch.arange(2, lag + 2).expand(batch, lag)  # (batch, lag)
    if noise > 0:
        flip = torch.rand(batch, lag, generator=g) < noise
        random_b = torch.randint(2, lag + 2, (batch, lag), generator=g)
        middle = torch.where(flip, random_b, middle)
    symbols = torch.cat([opener[:, None], middle], dim=1)  # (batch, lag + 1)
    targets = (opener == 0).long()
    return symbols, targets
