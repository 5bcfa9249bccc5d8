"""Small recurrent next-symbol predictors.

Chapter 1 introduces :class:`RNNPredictor`; chapters 2 to 4 reuse it. The
tiny causal transformer of Part III lives in
:mod:`distill_lessons.transformer`.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from distill_lessons._checks import generator, long_tensor, positive_int

__all__ = ["CELL_TYPES", "RNNPredictor"]

CELL_TYPES = ("rnn", "gru", "lstm")
"""Recurrent cells :class:`RNNPredictor` accepts."""


class RNNPredictor(nn.Module):
    """A recurrent net that reads symbols and predicts the next one.

    Introduced in chapter 1. The input symbol is one-hot coded, as in the
    1991 experiments, so there are no embeddings to learn. ``cell`` is
    ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.

    ``forward(ids)`` maps ids ``(batch, time)`` to logits
    ``(batch, time, vocab)``; the logits at step ``t`` are the prediction of
    the symbol at step ``t + 1``. :meth:`start` and :meth:`step` run the same
    net one symbol at a time, which is what the compressor of chapter 2
    needs.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 32,
        *,
        cell: str = "gru",
        seed: int | torch.Generator = 0,
    ):
        super().__init__()
        positive_int("vocab_size", vocab_size)
        positive_int("hidden_size", hidden_size)
        if cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.cell = cell

        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = layer(vocab_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | torch.Generator = 0) -> None:
        """Draw fresh weights from ``seed`` (uniform in +-1/sqrt(hidden))."""
        g = generator(seed)
        bound = self.hidden_size**-0.5
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)

    def _one_hot(self, ids: torch.Tensor) -> torch.Tensor:
        ids = long_tensor("ids", ids)
        if ids.dim() == 2 and ids.shape[1] < 1:
            raise ValueError(
                f"ids must hold at least one time step, got shape "
                f"{tuple(ids.shape)}"
            )
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"ids must lie in [0, {self.vocab_size - 1}], got values "
                f"from {int(ids.min())} to {int(ids.max())}"
            )
        return F.one_hot(ids, self.vocab_size).float()

    def forward(self, ids: torch.Tensor, state=None) -> torch.Tensor:
        """Logits ``(batch, time, vocab)`` for ids ``(batch, time)``."""
        ids = long_tensor("ids", ids, dims=2)
        hidden, _ = self.rnn(self._one_hot(ids), state)  # (batch, time, hid)
        return self.head(hidden)

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(batch, time, hidden)``, one after each symbol."""
        ids = long_tensor("ids", ids, dims=2)
        hidden, _ = self.rnn(self._one_hot(ids))
        return hidden

    @torch.no_grad()
    def start(self):
        """The state before any symbol has been read (``None``: all zeros)."""
        return None

    @torch.no_grad()
    def step(self, symbol: int, state=None) -> tuple[torch.Tensor, object]:
        """Read one symbol; return logits ``(vocab,)`` for the next, and state.

        Always runs the same sequence-length-one computation, so that an
        encoder and a decoder that both use it see identical numbers.
        """
        try:
            if isinstance(symbol, bool) or getattr(symbol, "dtype", 0) is (
                torch.bool
            ):
                raise TypeError
            symbol = operator.index(symbol)
        except TypeError:
            raise ValueError(
                f"symbol must be one integer id, got {symbol!r}"
            ) from None
        ids = torch.tensor([[int(symbol)]], dtype=torch.long)
        hidden, state = self.rnn(self._one_hot(ids), state)
        return self.head(hidden)[0, 0], state
