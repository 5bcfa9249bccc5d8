"""Train and evaluate the tiny language models of Part III.

Chapter 6 introduces these helpers: the teacher and student sizes
(:data:`TEACHER`, :data:`STUDENT`), :func:`train_lm` (next-token training on
a fixed stream of batches, with any loss), :func:`bits_per_token` on
held-out windows, and :func:`cache_teacher`, which stores a teacher's logits
for a batch stream once so that every student reuses them. Chapters 7
and 8 can reuse the same models and loops.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from distill_lessons._checks import (
    generator,
    long_tensor,
    non_negative_int,
    positive_float,
    positive_int,
)
from distill_lessons.text import windows_at
from distill_lessons.training import History
from distill_lessons.transformer import TinyGPT

__all__ = [
    "TEACHER",
    "STUDENT",
    "make_model",
    "train_lm",
    "bits_per_token",
    "cache_teacher",
]

TEACHER = {"d_model": 128, "n_layers": 4, "n_heads": 4}
"""Teacher size: 4 layers of width 128, about 0.8 M weights at V = 104."""

STUDENT = {"d_model": 64, "n_layers": 2, "n_heads": 4}
"""Student size: 2 layers of width 64, about 0.12 M weights at V = 104."""

LossFn = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(step, logits, targets)``: logits ``(batch, time, vocab)``."""


def make_model(
    vocab_size: int,
    size: dict,
    *,
    context: int = 64,
    seed: int | torch.Generator = 0,
) -> TinyGPT:
    """A :class:`TinyGPT` of ``size``, its weights drawn from ``seed``.

    ``size`` is :data:`TEACHER`, :data:`STUDENT` or any dict of ``d_model``,
    ``n_layers`` and ``n_heads``. ``seed`` is an int or a
    ``torch.Generator``.
    """
    allowed = {"d_model", "n_layers", "n_heads"}
    if not isinstance(size, dict) or set(size) - allowed:
        raise ValueError(
            f"size must be a dict with keys from {sorted(allowed)}, "
            f"got {size!r}"
        )
    generator(seed)  # refuses what is not a seed, naming it
    return TinyGPT(vocab_size, context=context, seed=seed, **size)


def _window_model(name: str, model: object) -> tuple[int, int]:
    """``(context, vocab_size)`` of a model that reads fixed windows."""
    context = getattr(model, "context", None)
    vocab = getattr(model, "vocab_size", None)
    if not isinstance(model, torch.nn.Module) or not (
        isinstance(context, int) and isinstance(vocab, int)
    ):
        raise TypeError(
            f"{name} must be a TinyGPT (a model with a context window and "
            f"a vocab_size, e.g. from make_model), got "
            f"{type(model).__name__}"
        )
    return context, vocab


def _next_token_ce(
    step: int, logits: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def train_lm(
    model: TinyGPT,
    ids: torch.Tensor,
    starts: torch.Tensor,
    *,
    lr: float,
    loss: LossFn | None = None,
    decay: bool = False,
    weight_decay: float = 0.01,
    progress: bool = False,
    callback: Callable[[int], object] | None = None,
    every: int = 0,
) -> History:
    """Train ``model`` for one step per row of ``starts`` on windows of ids.

    ``ids`` is the 1-d training text ``(n_tokens,)``; ``starts``
    ``(steps, batch)`` fixes every batch (see
    :func:`distill_lessons.text.batch_starts`), so two runs with the same
    starts see the same text in the same order, and nothing else here is
    random. Step ``s`` feeds windows of ``model.context`` tokens and calls
    ``loss(s, logits, targets)`` with logits ``(batch, context, vocab)``
    and next tokens ``(batch, context)``; the default loss is the
    next-token cross-entropy (training from scratch). A distillation loss
    looks up the teacher's outputs for step ``s`` itself.

    AdamW at a constant ``lr``, or with ``decay=True`` a cosine decay from
    ``lr`` to ``lr / 10``; gradient norm clipped at 1. When ``every > 0``,
    ``callback(done)`` runs after every ``every`` steps (and the last) in
    eval mode, and its results are kept in ``History.records``.
    """
    context, _ = _window_model("model", model)
    ids = long_tensor("ids", ids, dims=1)
    starts = long_tensor("starts", starts, dims=2)
    if starts.shape[0] == 0 or starts.shape[1] == 0:
        raise ValueError(
            "starts must hold at least one step of at least one window, "
            f"got shape {tuple(starts.shape)}"
        )
    positive_float("lr", lr)
    if isinstance(weight_decay, bool) or not isinstance(
        weight_decay, (int, float)
    ):
        raise ValueError(
            f"weight_decay must be a number in [0, 1), got {weight_decay!r}"
        )
    if not 0.0 <= weight_decay < 1.0:
        raise ValueError(f"weight_decay must be in [0, 1), got {weight_decay}")
    if loss is not None and not callable(loss):
        raise TypeError(
            "loss must be a function loss(step, logits, targets), got "
            f"{type(loss).__name__}"
        )
    non_negative_int("every", every)
    if callback is not None:
        if not callable(callback):
            raise TypeError(
                "callback must be a function callback(done), got "
                f"{type(callback).__name__}"
            )
        if every == 0:
            raise ValueError(
                "every must be an integer >= 1 when a callback is given "
                "(it is called after every `every` steps), got 0"
            )
    loss = _next_token_ce if loss is None else loss
    steps = len(starts)
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay
    )

    history = History()
    model.train()
    for step in tqdm(range(steps), desc="training", disable=not progress):
        if decay:
            frac = step / max(steps - 1, 1)
            scale = 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))
            for group in opt.param_groups:
                group["lr"] = lr * scale
        inputs, targets = windows_at(ids, starts[step], context)
        value = loss(step, model(inputs), targets)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            shape = getattr(value, "shape", None)
            raise ValueError(
                "loss must return a scalar tensor (one number to minimise), "
                f"got {type(value).__name__}"
                + ("" if shape is None else f" of shape {tuple(shape)}")
                + f" at step {step}"
            )
        if not torch.isfinite(value):
            raise FloatingPointError(
                f"loss became {float(value)} at step {step}; lower lr "
                f"(now {lr})"
            )
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.losses.append(value.item())

        done = step + 1
        if callback is not None and every > 0:
            if done % every == 0 or done == steps:
                model.eval()
                history.records[done] = callback(done)
                model.train()
    model.eval()
    return history


@torch.no_grad()
def bits_per_token(
    model: TinyGPT,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int = 64,
) -> float:
    """Mean next-token cross-entropy in bits over the graded positions.

    ``inputs`` and ``targets``: ``(n, time)``. Every position counts, also
    the first ones with little context, except those whose target is -100
    (ignored, as in ``F.cross_entropy``): the mean is over the others, and
    ``ValueError`` is raised when no position is left. With the byte
    tokenizer on ASCII text this is bits per character. The model is left
    in eval mode.
    """
    inputs = long_tensor("inputs", inputs, dims=2)
    targets = long_tensor("targets", targets, dims=2)
    if inputs.shape != targets.shape:
        raise ValueError(
            f"targets must have the shape of inputs {tuple(inputs.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    positive_int("batch_size", batch_size)
    kept = int((targets != -100).sum())
    if kept == 0:
        raise ValueError(
            "targets must hold at least one position that is not -100 "
            f"(ignored), got shape {tuple(targets.shape)} with none"
        )
    model.eval()
    total = 0.0
    for i in range(0, len(inputs), batch_size):
        logits = model(inputs[i : i + batch_size])  # (b, time, vocab)
        total += float(
            F.cross_entropy(
                logits.flatten(0, 1).float(),
                targets[i : i + batch_size].flatten(),
                reduction="sum",
            )
        )
    return total / kept / math.log(2)


@torch.no_grad()
def cache_teacher(
    teacher: TinyGPT,
    ids: torch.Tensor,
    starts: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float16,
) -> torch.Tensor:
    """The teacher's logits for every batch of a stream, computed once.

    ``starts``: ``(steps, batch)`` as for :func:`train_lm`. Returns logits
    ``(steps, batch, context, vocab)`` in ``dtype`` (half precision by
    default: 2 bytes per number, and far below the noise of training). The
    teacher runs in eval mode without gradients, so nothing a student does
    later can reach it.

    ``dtype`` must be a floating-point type. Logits the cache cannot hold
    (beyond about 65504 in magnitude for half precision) are refused with
    ``ValueError`` rather than stored as infinities; pass
    ``dtype=torch.float32`` for such a teacher.
    """
    context, vocab = _window_model("teacher", teacher)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"dtype must be a torch.dtype, got {type(dtype).__name__}"
        )
    if not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point type (e.g. torch.float16), "
            f"got {dtype}"
        )
    ids = long_tensor("ids", ids, dims=1)
    starts = long_tensor("starts", starts, dims=2)
    largest = torch.finfo(dtype).max
    teacher.eval()
    steps, batch = starts.shape
    out = torch.empty(
        steps, batch, context, vocab, dtype=dtype
    )  # (steps, batch, context, vocab)
    for s in range(steps):
        inputs, _ = windows_at(ids, starts[s], context)
        logits = teacher(inputs)  # (batch, context, vocab)
        if not torch.isfinite(logits).all():
            raise ValueError(
                f"teacher gave non-finite logits at step {s}; it cannot be "
                "cached"
            )
        peak = float(logits.abs().max()) if logits.numel() else 0.0
        if peak > largest:
            raise ValueError(
                f"teacher logits reach {peak:.6g} at step {s}, beyond the "
                f"largest {dtype} ({largest:.6g}); pass dtype=torch.float32"
            )
        out[s] = logits.to(dtype)
    return out
