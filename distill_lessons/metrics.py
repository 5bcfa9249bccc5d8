"""Numbers the chapters report: accuracy, bits per symbol, perplexity.

Chapter 1 introduces :func:`bits_per_symbol`; later chapters add their own
measures here when more than one chapter needs them.
"""

from __future__ import annotations

import torch

from distill_lessons._checks import long_tensor
from distill_lessons.surprise import _check_pair, surprise_bits

__all__ = ["accuracy", "bits_per_symbol", "perplexity"]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of rows whose argmax over the last axis equals the target.

    ``logits``: ``(..., vocab)``; ``targets``: ``(...)`` integer ids in
    ``[0, vocab)``. Raises ``ValueError`` for mismatched shapes, ids outside
    the vocabulary, NaN logits or no targets at all.
    """
    targets = _check_pair(logits, targets)
    if targets.numel() == 0:
        raise ValueError("targets must not be empty")
    return float((logits.argmax(-1) == targets).float().mean())


def bits_per_symbol(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = -100
) -> float:
    """Mean surprise in bits over the targets not equal to ``ignore_index``.

    ``logits``: ``(..., vocab)``; ``targets``: ``(...)``. This is the
    cross-entropy in nats divided by ln 2.
    """
    targets = long_tensor("targets", targets)
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1:
        raise ValueError(
            "logits must be a floating-point tensor of shape (..., vocab)"
        )
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:-1])}, "
            f"got {tuple(targets.shape)}"
        )
    keep = targets != ignore_index
    if not keep.any():
        raise ValueError("targets must keep at least one position")
    return float(surprise_bits(logits[keep], targets[keep]).mean())


def perplexity(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = -100
) -> float:
    """``exp`` of the mean cross-entropy in nats (``2 ** bits_per_symbol``).

    Takes the same arguments and raises the same errors as
    :func:`bits_per_symbol`, and ``ValueError`` when the perplexity is too
    large for a float (report bits per symbol instead).
    """
    bits = bits_per_symbol(logits, targets, ignore_index=ignore_index)
    try:
        return 2.0**bits
    except OverflowError:
        raise ValueError(
            f"perplexity overflows a float: the mean surprise is {bits:.4g} "
            "bits per symbol; report bits_per_symbol instead"
        ) from None
