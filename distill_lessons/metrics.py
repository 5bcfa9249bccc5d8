"""Numbers the chapters report: accuracy, bits per symbol, perplexity.

Chapter 1 introduces :func:`bits_per_symbol`; later chapters add their own
measures here when more than one chapter needs them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distill_lessons.surprise import surprise_bits

__all__ = ["accuracy", "bits_per_symbol", "perplexity"]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of rows whose argmax over the last axis equals the target."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:-1])}, "
            f"got {tuple(targets.shape)}"
        )
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
    keep = targets != ignore_index
    if not keep.any():
        raise ValueError("targets must keep at least one position")
    return float(surprise_bits(logits[keep], targets[keep]).mean())


def perplexity(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = -100
) -> float:
    """``exp`` of the mean cross-entropy in nats (``2 ** bits_per_symbol``)."""
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=ignore_index,
    )
    return math.exp(float(ce))
