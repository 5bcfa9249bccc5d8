"""Generation from the book's language models, and teacher-written data.

Chapters 7 and 8 use :func:`generate` (greedy, or sampling with a
temperature and top-k, seeded) and :func:`teacher_dataset`, which lets a
teacher write completions and keeps those a checker accepts. With a
key-value cache the prompt is read once and every new token costs one
position, so a sample's cost grows linearly with its length.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from distill_lessons._checks import (
    generator,
    long_tensor,
    positive_float,
    positive_int,
)

__all__ = ["generate", "teacher_dataset"]


def _next_token(
    logits: torch.Tensor,
    *,
    greedy: bool,
    temperature: float,
    top_k: int | None,
    g: torch.Generator,
) -> torch.Tensor:
    """One token per row from last-position logits (batch, vocab)."""
    _check_logits(logits, "the model gave logits")
    if greedy:
        return logits.argmax(dim=-1)  # (batch,)
    logits = logits / temperature
    _check_logits(
        logits,
        f"temperature={temperature!r} is too small for these logits: "
        "logits / temperature gave",
    )
    if top_k is not None and top_k < logits.shape[-1]:
        # Everything below the k-th largest logit gets probability zero.
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (batch, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)  # (batch, vocab)
    return torch.multinomial(probs, 1, generator=g).squeeze(1)  # (batch,)


def _check_logits(logits: torch.Tensor, what: str) -> None:
    """Refuse NaN, +inf, and rows in which every logit is -inf.

    A -inf logit (a token that may never be drawn) is allowed, as long as
    some token in the row can be drawn.
    """
    if torch.isnan(logits).any() or (logits == float("inf")).any():
        raise ValueError(f"{what} values that are NaN or +inf")
    if (logits.amax(dim=-1) == float("-inf")).any():
        raise ValueError(f"{what} a row in which every logit is -inf")


def _takes_cache(model: nn.Module) -> bool:
    """Whether ``model``'s forward accepts a ``cache=`` keyword."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let it try
        return True
    return any(
        p.name == "cache" or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in params
    )


@torch.no_grad()
def generate(
    model: nn.Module,
    prompts: torch.Tensor,
    n_new: int,
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | torch.Generator = 0,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue each prompt by ``n_new`` tokens: ``(batch, n_new)``.

    ``prompts``: ``(batch, time)`` ids, all of the same length. With
    ``greedy`` each step takes the most likely token; otherwise it samples
    from ``softmax(logits / temperature)``, restricted to the ``top_k`` most
    likely tokens when ``top_k`` is given. ``seed`` fixes the samples.
    ``use_cache=False`` rereads the whole sequence at every step (slower;
    it exists to check the cache and to time it). No gradient flows.

    Raises ``ValueError`` for a temperature <= 0 or a top-k < 1: greedy
    decoding is asked for with ``greedy=True``, not with temperature 0.
    Also for a prompt plus ``n_new`` tokens that will not fit the model's
    ``context`` (checked before anything runs), for ``use_cache=True`` with
    a model that has no key-value cache, for logits that are NaN or +inf,
    and for a temperature so small that ``logits / temperature`` overflows.
    The model's training mode is restored, also after an error.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    prompts = long_tensor("prompts", prompts, dims=2)
    if prompts.shape[1] == 0:
        raise ValueError(
            "prompts must hold at least one token per row, got shape "
            f"{tuple(prompts.shape)}"
        )
    positive_int("n_new", n_new)
    positive_float("temperature", temperature)
    if top_k is not None:
        positive_int("top_k", top_k)
    g = generator(seed)
    context = getattr(model, "context", None)
    # The last new token is never fed back, so the model reads at most
    # time + n_new - 1 positions.
    needed = prompts.shape[1] + n_new - 1
    if isinstance(context, int) and needed > context:
        raise ValueError(
            f"n_new={n_new} after prompts of {prompts.shape[1]} tokens "
            f"needs {needed} positions, more than the model's context "
            f"{context}; n_new may be at most "
            f"{context - prompts.shape[1] + 1}"
        )
    if use_cache and not _takes_cache(model):
        raise ValueError(
            f"use_cache=True needs a model with a key-value cache, but "
            f"{type(model).__name__}.forward takes no cache; pass "
            "use_cache=False"
        )
    was_training = model.training
    model.eval()
    try:
        pick = dict(greedy=greedy, temperature=temperature, top_k=top_k, g=g)
        new: list[torch.Tensor] = []
        if use_cache:
            logits, cache = model(prompts, cache=[])  # (batch, time, vocab)
            for step in range(n_new):
                token = _next_token(logits[:, -1], **pick)  # (batch,)
                new.append(token)
                if step + 1 < n_new:
                    logits, cache = model(token[:, None], cache=cache)
        else:
            seq = prompts
            for _ in range(n_new):
                token = _next_token(model(seq)[:, -1], **pick)
                new.append(token)
                seq = torch.cat([seq, token[:, None]], dim=1)
    finally:
        model.train(was_training)
    return torch.stack(new, dim=1)  # (batch, n_new)


def teacher_dataset(
    teacher: nn.Module,
    prompts: torch.Tensor,
    n_new: int,
    *,
    accept: Callable[[torch.Tensor], torch.Tensor] | None = None,
    greedy: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | torch.Generator = 0,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Let ``teacher`` complete ``prompts`` and keep what ``accept`` passes.

    Returns ``(sequences, kept)``: the accepted prompt + completion rows
    ``(n_kept, time + n_new)`` and a bool mask ``(batch,)`` saying which
    prompts they came from. ``accept(completions)`` maps ``(batch, n_new)``
    to ``(batch,)`` bools (a checker, the rejection-sampling step used to
    build the distillation data of DeepSeek-R1's students); ``None`` keeps
    everything. Generation runs in chunks of ``batch_size`` prompts.
    ``accept`` must return bools (a bool tensor or a list of bools); ints
    or floats are refused rather than read as truth values.
    """
    prompts = long_tensor("prompts", prompts, dims=2)
    if len(prompts) == 0:
        raise ValueError("prompts must hold at least one prompt, got none")
    positive_int("batch_size", batch_size)
    if accept is not None and not callable(accept):
        raise TypeError(
            "accept must be a function of the completions, got "
            f"{type(accept).__name__}"
        )
    g = generator(seed)
    parts = [
        generate(
            teacher,
            prompts[i : i + batch_size],
            n_new,
            greedy=greedy,
            temperature=temperature,
            top_k=top_k,
            seed=g,
        )
        for i in range(0, len(prompts), batch_size)
    ]
    completions = torch.cat(parts)  # (batch, n_new)
    if accept is None:
        kept = torch.ones(len(prompts), dtype=torch.bool)
    else:
        verdict = accept(completions)
        try:
            kept = torch.as_tensor(verdict)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"accept must return {len(prompts)} bools, got "
                f"{type(verdict).__name__}"
            ) from None
        if kept.dtype != torch.bool:
            raise ValueError(
                f"accept must return bools (e.g. completions[:, 0] == 2), "
                f"got dtype {kept.dtype}"
            )
        if kept.shape != (len(prompts),):
            raise ValueError(
                f"accept must return {len(prompts)} bools, "
                f"got shape {tuple(kept.shape)}"
            )
    sequences = torch.cat([prompts, completions], dim=1)[kept]
    return sequences, kept
