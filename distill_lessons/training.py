"""Small, seeded training loops that return their history.

Chapter 1 introduces :func:`fit`, the loop every later chapter reuses, and
:func:`train_next_symbol`, which teaches a predictor to guess the next
symbol. Progress is shown with ``tqdm.auto``; pass ``progress=False`` to
keep tests and the book quiet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_lessons._checks import (
    generator,
    long_tensor,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = ["History", "fit", "train_next_symbol"]

log = logging.getLogger(__name__)


@dataclass
class History:
    """What a training run leaves behind: one loss per step, and extras.

    ``losses[i]`` is the training loss of step ``i``. ``records`` holds
    whatever the ``callback`` of :func:`fit` returned, keyed by step.
    """

    losses: list[float] = field(default_factory=list)
    records: dict[int, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.losses)


def fit(
    model: nn.Module,
    loss_fn: Callable[[int, torch.Generator], torch.Tensor],
    *,
    steps: int,
    lr: float = 1e-2,
    seed: int | torch.Generator,
    clip: float | None = 1.0,
    optimizer: str = "adam",
    progress: bool = True,
    callback: Callable[[int], object] | None = None,
    every: int = 0,
    description: str = "training",
) -> History:
    """Run ``steps`` optimiser steps on ``model`` and return the history.

    ``loss_fn(step, generator)`` draws its own batch from ``generator`` (so
    the data order follows ``seed``) and returns a scalar loss. The
    optimiser is Adam or plain SGD (``optimizer="sgd"``); ``clip`` caps the
    gradient norm, or ``None`` leaves it alone. When ``every > 0``,
    ``callback(step)`` is called after every ``every`` steps and after the
    last one, and its return value is stored in ``History.records``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable, got {type(loss_fn).__name__}"
        )
    positive_int("steps", steps)
    positive_float("lr", lr)
    non_negative_int("every", every)
    if callback is not None and every == 0:
        raise ValueError(
            "every must be >= 1 when a callback is given (every=0 would "
            "never call it)"
        )
    if clip is not None:
        positive_float("clip", clip)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(
            f"optimizer must be 'adam' or 'sgd', got {optimizer!r}"
        )
    g = generator(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require a gradient")
    opt = (
        torch.optim.Adam(params, lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr)
    )

    history = History()
    model.train()
    for step in tqdm(range(steps), desc=description, disable=not progress):
        loss = loss_fn(step, g)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(
                "loss_fn must return a scalar tensor, got "
                f"{getattr(loss, 'shape', type(loss).__name__)} at step {step}"
            )
        if not loss.requires_grad:
            raise ValueError(
                f"loss_fn returned a loss with no gradient at step {step}; "
                "compute it from the model's outputs, outside torch.no_grad()"
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {float(loss.detach())} at step {step}; lower lr "
                f"(now {lr}) or check the data"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        history.losses.append(float(loss.detach()))

        done = step + 1
        if callback is not None and every > 0:
            if done % every == 0 or done == steps:
                model.eval()
                history.records[done] = callback(done)
                model.train()
    model.eval()
    log.debug(
        "%s: %d steps, last loss %.4f", description, steps, history.losses[-1]
    )
    return history


def train_next_symbol(
    model: nn.Module,
    stream: torch.Tensor,
    *,
    steps: int,
    window: int = 32,
    batch_size: int = 16,
    lr: float = 1e-2,
    seed: int | torch.Generator,
    progress: bool = True,
    callback: Callable[[int], object] | None = None,
    every: int = 0,
) -> History:
    """Teach ``model`` to predict the next symbol of ``stream``.

    Each step draws ``batch_size`` windows of ``window + 1`` consecutive
    symbols from the 1-d ``stream`` (time,) and minimises the cross-entropy
    of every next symbol, in nats. ``model(ids)`` must map ``(batch, time)``
    to logits ``(batch, time, vocab)``.
    """
    stream = long_tensor("stream", stream, dims=1)
    positive_int("window", window)
    positive_int("batch_size", batch_size)
    if len(stream) < window + 1:
        raise ValueError(
            f"stream must hold at least window + 1 = {window + 1} symbols, "
            f"got {len(stream)}"
        )
    offsets = torch.arange(window + 1)

    def loss_fn(step: int, g: torch.Generator) -> torch.Tensor:
        starts = torch.randint(
            len(stream) - window, (batch_size, 1), generator=g
        )
        ids = stream[starts + offsets]  # (batch, window + 1)
        logits = model(ids[:, :-1])  # (batch, window, vocab)
        return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())

    return fit(
        model,
        loss_fn,
        steps=steps,
        lr=lr,
        seed=seed,
        progress=progress,
        callback=callback,
        every=every,
        description="next-symbol training",
    )
