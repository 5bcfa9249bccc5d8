"""Surprise: how unexpected each symbol was to a predictor.

Chapter 1 introduces both measures: the surprise in bits of the symbol that
actually came (:func:`surprise_bits`), and the yes/no rule of the 1991 papers
that decides which symbols count as unexpected (:func:`unexpected`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distill_lessons._checks import long_tensor, probability

__all__ = ["surprise_bits", "unexpected", "next_symbol_logits"]


def _check_pair(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError(
            "logits must be a floating-point tensor of shape (..., vocab)"
        )
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(
            f"logits must have shape (..., vocab), got {tuple(logits.shape)}"
        )
    if logits.isnan().any() or logits.isposinf().any():
        raise ValueError(
            "logits must not hold NaN or +inf (a model that diverged?)"
        )
    if logits.numel() and logits.isneginf().all(-1).any():
        raise ValueError(
            "logits must give some symbol a chance: a row is all -inf"
        )
    targets = long_tensor("targets", targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:-1])} to match "
            f"logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    vocab = logits.shape[-1]
    if targets.numel() and (targets.min() < 0 or targets.max() >= vocab):
        raise ValueError(
            f"targets must lie in [0, {vocab - 1}], got values from "
            f"{int(targets.min())} to {int(targets.max())}"
        )
    return targets


def surprise_bits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Surprise of each target, in bits: ``-log2 p(target)``.

    ``logits``: ``(..., vocab)``, unnormalised scores of the predictor.
    ``targets``: ``(...)``, ids of the symbols that actually came.
    Returns a float32 tensor of shape ``(...)``. A symbol given probability
    1/2 costs 1 bit, one given probability 1/8 costs 3 bits.

    Raises ``ValueError`` if the shapes do not match or a target id lies
    outside the vocabulary.
    """
    targets = _check_pair(logits, targets)
    log_p = F.log_softmax(logits.float(), dim=-1)  # (..., vocab), nats
    picked = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -picked / math.log(2.0)


def unexpected(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    threshold: float | None = None,
) -> torch.Tensor:
    """Which targets the predictor did not expect, as a bool tensor ``(...)``.

    By default this is the rule of the 1991 papers: a symbol is unexpected
    when the predictor's most likely symbol (the argmax of ``logits``) is not
    the one that came. With local (one-hot) codes this is the same as the
    papers' "nearest legal symbol" rule.

    With ``threshold`` in [0, 1] a symbol is unexpected instead when the
    probability the predictor gave it is below ``threshold``.
    """
    targets = _check_pair(logits, targets)
    if threshold is None:
        return logits.argmax(dim=-1) != targets
    probability("threshold", threshold)
    p = F.softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1))
    return p.squeeze(-1) < threshold


def next_symbol_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits ``(batch, time - 1, vocab)`` predicting ``ids[:, 1:]``.

    A convenience for the chapters: runs ``model`` over ``ids`` (batch,
    time) without gradient and drops the prediction made after the last
    symbol, so position ``t`` of the result lines up with ``ids[:, t + 1]``.
    """
    ids = long_tensor("ids", ids, dims=2)
    if ids.shape[1] < 2:
        raise ValueError(
            f"ids must have at least 2 time steps, got {ids.shape[1]}"
        )
    with torch.no_grad():
        return model(ids)[:, :-1]
