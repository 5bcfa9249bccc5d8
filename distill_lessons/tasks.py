"""A toy reasoning task with a checkable answer: the running sum mod 10.

Chapter 8 distils a teacher that writes its steps into students trained on
its traces or on answers alone; chapter 7 uses the same task, with slips in
the demonstrations, for sequence-level and on-policy distillation.

A problem is ``k`` digits. Its prompt is the digits followed by ``=``. The
*trace* completion writes the ``k`` running sums mod 10, then ``>``, the
answer (the last running sum) and ``E``; the *answer-only* completion
writes ``>``, the answer and ``E``. Every sequence of one format has the
same length, so batches need no padding.

The *copy* format (chapter 7) writes each step as two tokens, the digit
copied from the question and then the new running sum, so that a slip in
copying changes every sum after it unless the writer reads the question
again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill_lessons._checks import (
    generator,
    long_tensor,
    non_negative_int,
    positive_int,
    probability,
)

__all__ = ["SYMBOLS", "RunningSum"]

SYMBOLS: tuple[str, ...] = tuple("0123456789") + ("=", ">", "E")
"""The vocabulary: ten digits, the question mark ``=``, the answer marker
``>`` and the end mark ``E``. A digit's id is its value."""

EQUALS, ANSWER, END = 10, 11, 12

FORMATS = ("trace", "answer", "copy")


@dataclass(frozen=True)
class RunningSum:
    """The running sum of ``k`` random digits, mod 10.

    ``prompt_len`` is ``k + 1`` (digits and ``=``); the completion is
    ``k + 3`` tokens long with the trace, ``2 k + 3`` in the copy format
    and 3 tokens with the answer alone.
    """

    k: int

    def __post_init__(self) -> None:
        positive_int("k", self.k)

    @property
    def vocab_size(self) -> int:
        return len(SYMBOLS)

    @property
    def prompt_len(self) -> int:
        return self.k + 1

    def completion_len(self, fmt: str = "trace") -> int:
        """Tokens after the prompt: ``k + 3``, ``2 k + 3`` or 3."""
        _check_format(fmt)
        return {"trace": self.k + 3, "copy": 2 * self.k + 3}.get(fmt, 3)

    def seq_len(self, fmt: str = "trace") -> int:
        """Prompt plus completion."""
        return self.prompt_len + self.completion_len(fmt)

    def problems(self, n: int, *, seed: int | torch.Generator) -> torch.Tensor:
        """``n`` problems, uniform random digits: ``(n, k)`` long."""
        positive_int("n", n)
        return torch.randint(0, 10, (n, self.k), generator=generator(seed))

    def prompts(self, digits: torch.Tensor) -> torch.Tensor:
        """The prompts ``(n, k + 1)``: the digits, then ``=``."""
        digits = self._digits(digits)
        equals = torch.full((len(digits), 1), EQUALS)
        return torch.cat([digits, equals], dim=1)

    def answers(self, digits: torch.Tensor) -> torch.Tensor:
        """The right answers ``(n,)``: the sum of the digits mod 10."""
        return self._digits(digits).sum(dim=1) % 10

    def sequences(
        self,
        digits: torch.Tensor,
        fmt: str = "trace",
        *,
        slip_prob: float = 0.0,
        recover_prob: float = 0.0,
        copy_slip_prob: float = 0.0,
        seed: int | torch.Generator = 0,
    ) -> torch.Tensor:
        """Whole demonstrations ``(n, seq_len(fmt))``: prompt + completion.

        With ``slip_prob > 0`` (trace format only), each demonstration
        independently holds, with that probability, one *slip*: one running
        sum, at a uniform position, is replaced by a uniform wrong digit.
        With probability ``recover_prob`` the slip is corrected: the later
        sums and the answer are the right ones, as if the writer noticed.
        Otherwise the later sums carry on from the wrong value, so the
        written answer is wrong too.

        In the copy format, ``copy_slip_prob`` is the chance that each
        copied digit is independently miscopied (a uniform wrong digit)
        while the sums are computed from the question's true digits, so a
        miscopy never changes the answer.
        """
        digits = self._digits(digits)
        _check_format(fmt)
        probability("slip_prob", slip_prob)
        probability("recover_prob", recover_prob)
        probability("copy_slip_prob", copy_slip_prob)
        if slip_prob > 0 and fmt == "answer":
            raise ValueError("slip_prob > 0 needs a format with steps")
        if copy_slip_prob > 0 and fmt != "copy":
            raise ValueError(
                f"copy_slip_prob > 0 needs fmt='copy', got {fmt!r}"
            )
        g = generator(seed)
        n = len(digits)
        sums = digits.cumsum(dim=1) % 10  # (n, k)
        answer = sums[:, -1:].clone()  # (n, 1)

        if slip_prob > 0:
            slipped = torch.rand(n, generator=g) < slip_prob  # (n,)
            where = torch.randint(0, self.k, (n,), generator=g)
            shift = torch.randint(1, 10, (n,), generator=g)  # never 0
            recovers = torch.rand(n, generator=g) < recover_prob  # (n,)
            after = torch.arange(self.k)[None, :]  # (1, k)
            # A corrected slip changes one sum; an uncorrected one shifts
            # that sum and every later one by the same amount.
            hit = torch.where(
                recovers[:, None],
                after == where[:, None],
                after >= where[:, None],
            )  # (n, k)
            hit = hit & slipped[:, None]
            sums = (sums + hit * shift[:, None]) % 10
            carried = (slipped & ~recovers)[:, None]  # (n, 1)
            answer = (answer + carried * shift[:, None]) % 10

        marks = torch.full((n, 1), ANSWER)
        ends = torch.full((n, 1), END)
        if fmt == "trace":
            completion = torch.cat([sums, marks, answer, ends], dim=1)
        elif fmt == "copy":
            copies = digits.clone()
            if copy_slip_prob > 0:
                miss = torch.rand(n, self.k, generator=g) < copy_slip_prob
                shift = torch.randint(1, 10, (n, self.k), generator=g)
                copies = (copies + miss * shift) % 10  # (n, k)
            steps = torch.stack([copies, sums], dim=2).flatten(1)  # (n, 2k)
            completion = torch.cat([steps, marks, answer, ends], dim=1)
        else:
            completion = torch.cat([marks, answer, ends], dim=1)
        return torch.cat([self.prompts(digits), completion], dim=1)

    def check(
        self, digits: torch.Tensor, completions: torch.Tensor
    ) -> torch.Tensor:
        """Which completions ``(n, time)`` answer right: ``(n,)`` bool.

        The answer is the token right after the first ``>``; the steps
        before it are not graded (a slip that is corrected later still
        counts as right, as in the checkers used for reasoning models).
        A completion without ``>``, or with ``>`` as its last token, is
        wrong; so is every completion shorter than two tokens.
        """
        digits = self._digits(digits)
        completions = long_tensor("completions", completions, dims=2)
        if len(completions) != len(digits):
            raise ValueError(
                f"completions must have {len(digits)} rows (one per "
                f"problem), got {len(completions)}"
            )
        if completions.shape[1] < 2:
            # No room for a mark and an answer after it: all wrong.
            return torch.zeros(len(digits), dtype=torch.bool)
        is_mark = completions[:, :-1] == ANSWER  # (n, time - 1)
        found = is_mark.any(dim=1)
        first = is_mark.float().argmax(dim=1)  # first True, 0 if none
        given = completions[torch.arange(len(digits)), first + 1]
        return found & (given == self.answers(digits))

    def decode(self, ids: torch.Tensor) -> str:
        """One sequence of ids ``(time,)`` as text, e.g. ``'372=3092>2E'``."""
        ids = long_tensor("ids", ids, dims=1)
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(SYMBOLS)):
            raise ValueError(f"ids must lie in [0, {len(SYMBOLS) - 1}]")
        return "".join(SYMBOLS[i] for i in ids.tolist())

    def _digits(self, digits: torch.Tensor) -> torch.Tensor:
        digits = long_tensor("digits", digits, dims=2)
        if digits.shape[1] != self.k:
            raise ValueError(
                f"digits must have k={self.k} columns, got {digits.shape[1]}"
            )
        if digits.numel() and (digits.min() < 0 or digits.max() > 9):
            raise ValueError("digits must lie in [0, 9]")
        non_negative_int("n", len(digits))
        return digits


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
