"""Training loops for distilling whole sequences, off and on policy.

Chapter 8 uses :func:`train_sequences` (cross-entropy on teacher-written
sequences, i.e. sequence-level distillation) and :func:`solve_rate`.
Chapter 7 adds :func:`train_on_policy`: a fraction ``lmbda`` of the batches
is written by the student itself and scored token by token by the teacher
(generalised knowledge distillation); ``lmbda=0`` is word-level
distillation. :func:`token_divergence` measures exposure bias.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_lessons._checks import (
    generator,
    long_tensor,
    positive_float,
    positive_int,
    probability,
)
from distill_lessons.sampling import generate
from distill_lessons.transformer import TinyGPT

__all__ = [
    "tiny_gpt",
    "completion_targets",
    "train_sequences",
    "on_policy_loss",
    "train_on_policy",
    "token_divergence",
    "solve_rate",
]

log = logging.getLogger(__name__)

Divergence = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def tiny_gpt(
    vocab_size: int,
    context: int,
    *,
    d_model: int,
    n_layers: int,
    n_heads: int = 4,
    seed: int,
) -> TinyGPT:
    """A :class:`TinyGPT` for the running-sum tasks, drawn from ``seed``."""
    return TinyGPT(
        vocab_size,
        context=context,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        seed=seed,
    )


def _check_seqs(seqs: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """``seqs`` as long ids ``(batch, time)``, with 1 <= prompt_len < time."""
    seqs = long_tensor("seqs", seqs, dims=2)
    positive_int("prompt_len", prompt_len)
    if prompt_len >= seqs.shape[1]:
        raise ValueError(
            f"prompt_len must be < sequence length {seqs.shape[1]}, "
            f"got {prompt_len}"
        )
    return seqs


def completion_targets(seqs: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Next-token targets ``(batch, time - 1)``, -100 on the prompt.

    Position ``t`` of a model's output predicts token ``t + 1``; only the
    tokens after the prompt are graded, so the first ``prompt_len - 1``
    targets are set to -100 (ignored by ``F.cross_entropy``).
    """
    seqs = _check_seqs(seqs, prompt_len)
    targets = seqs[:, 1:].clone()  # (batch, time - 1)
    targets[:, : prompt_len - 1] = -100
    return targets


def _optimise(
    model: nn.Module,
    loss_fn: Callable[[torch.Generator], torch.Tensor],
    *,
    steps: int,
    lr: float,
    seed: int | torch.Generator,
    warmup: float = 0.05,
    clip: float = 1.0,
    progress: bool = False,
    description: str = "training",
) -> list[float]:
    """AdamW with a short linear warm-up, then a cosine decay to zero.

    The schedule matters here: the tasks of chapters 7 and 8 are learned in
    a sudden jump, and a decaying learning rate makes where the jump lands
    repeatable from seed to seed.
    """
    positive_int("steps", steps)
    positive_float("lr", lr)
    g = generator(seed)
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0
    )
    n_warm = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        done = (step - n_warm) / max(1, steps - n_warm)
        return 0.5 * (1.0 + math.cos(math.pi * done))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc=description, disable=not progress):
        loss = loss_fn(g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()
    log.debug("%s: %d steps, last loss %.4f", description, steps, losses[-1])
    return losses


def train_sequences(
    model: nn.Module,
    seqs: torch.Tensor,
    prompt_len: int,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int | torch.Generator,
    progress: bool = False,
) -> list[float]:
    """Cross-entropy on the completions of ``seqs`` ``(n, time)``.

    With ground-truth demonstrations this is ordinary supervised training;
    with sequences a teacher wrote it is sequence-level distillation (Kim
    and Rush, 2016). Batches are drawn with replacement, seeded. Returns the
    loss (nats per completion token) of every step.
    """
    targets = completion_targets(seqs, prompt_len)
    positive_int("batch_size", batch_size)

    def loss_fn(g: torch.Generator) -> torch.Tensor:
        rows = torch.randint(len(seqs), (batch_size,), generator=g)
        logits = model(seqs[rows, :-1])  # (batch, time - 1, vocab)
        return F.cross_entropy(
            logits.flatten(0, 1), targets[rows].flatten(), ignore_index=-100
        )

    return _optimise(
        model,
        loss_fn,
        steps=steps,
        lr=lr,
        seed=seed,
        progress=progress,
        description="sequence training",
    )


def _completion_logits(
    model: nn.Module, seqs: torch.Tensor, prompt_len: int
) -> torch.Tensor:
    """Logits predicting the completion: ``(batch * n_new, vocab)``."""
    logits = model(seqs[:, :-1])  # (batch, time - 1, vocab)
    return logits[:, prompt_len - 1 :].flatten(0, 1)


def _same_vocabulary(student_logits, teacher_logits) -> None:
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(
            "student and teacher must share one vocabulary: the student "
            f"gives {student_logits.shape[-1]} logits per position, the "
            f"teacher {teacher_logits.shape[-1]}"
        )


def on_policy_loss(
    student: nn.Module,
    teacher: nn.Module,
    seqs: torch.Tensor,
    prompt_len: int,
    divergence: Divergence,
    *,
    own_samples: bool,
    temperature: float = 1.0,
    seed: int | torch.Generator = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of token-level distillation; returns ``(loss, sequences)``.

    ``seqs`` ``(batch, time)`` are fixed demonstrations. With
    ``own_samples`` their completions are replaced by the student's own
    samples at ``temperature`` (drawn without gradient: the sampled tokens
    are data, as in Agarwal et al., 2024). Teacher and student then read the
    same sequences and ``divergence(student_logits, teacher_logits)``, both
    ``(tokens, vocab)``, is taken over the completion positions. The
    teacher gets no gradient. The student's training mode is left as it
    was.
    """
    seqs = _check_seqs(seqs, prompt_len)
    if own_samples:
        n_new = seqs.shape[1] - prompt_len
        completions = generate(
            student,
            seqs[:, :prompt_len],
            n_new,
            temperature=temperature,
            seed=seed,
        )  # (batch, n_new), ints from a no-grad loop
        seqs = torch.cat([seqs[:, :prompt_len], completions], dim=1)
    with torch.no_grad():
        teacher_logits = _completion_logits(teacher, seqs, prompt_len)
    student_logits = _completion_logits(student, seqs, prompt_len)
    _same_vocabulary(student_logits, teacher_logits)
    return divergence(student_logits, teacher_logits), seqs


def train_on_policy(
    student: nn.Module,
    teacher: nn.Module,
    seqs: torch.Tensor,
    prompt_len: int,
    divergence: Divergence,
    *,
    lmbda: float,
    steps: int,
    temperature: float = 1.0,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int | torch.Generator,
    progress: bool = False,
) -> list[float]:
    """Token-level distillation where a share ``lmbda`` of batches is own.

    Each step draws ``batch_size`` rows of ``seqs``; with probability
    ``lmbda`` their completions are replaced by the student's samples (see
    :func:`on_policy_loss`). ``lmbda=0`` is word-level distillation on the
    given sequences; ``lmbda=1`` is purely on-policy. ``divergence`` takes
    ``(student_logits, teacher_logits)`` and returns a scalar, e.g. a
    forward KL, reverse KL or generalised JSD. Returns each step's loss.

    The teacher runs in eval mode and without gradients; its training mode
    is restored afterwards and its parameters' ``requires_grad`` is never
    changed.
    """
    seqs = _check_seqs(seqs, prompt_len)
    probability("lmbda", lmbda)
    positive_int("batch_size", batch_size)
    teacher_was_training = teacher.training

    def loss_fn(g: torch.Generator) -> torch.Tensor:
        rows = torch.randint(len(seqs), (batch_size,), generator=g)
        own = bool(torch.rand((), generator=g) < lmbda)
        loss, _ = on_policy_loss(
            student,
            teacher,
            seqs[rows],
            prompt_len,
            divergence,
            own_samples=own,
            temperature=temperature,
            seed=g,
        )
        return loss

    teacher.eval()
    try:
        return _optimise(
            student,
            loss_fn,
            steps=steps,
            lr=lr,
            seed=seed,
            progress=progress,
            description="on-policy distillation",
        )
    finally:
        teacher.train(teacher_was_training)


@torch.no_grad()
def token_divergence(
    student: nn.Module,
    teacher: nn.Module,
    seqs: torch.Tensor,
    prompt_len: int,
) -> torch.Tensor:
    """KL(teacher || student) in nats at each completion position.

    Both models read the same ``seqs`` ``(batch, time)``; the result is
    ``(batch, time - prompt_len)``. Averaged over sequences the teacher
    wrote, it is the student's error on the teacher's prefixes; over
    sequences the student wrote, on its own prefixes. The difference is
    the exposure bias of chapter 7.
    """
    seqs = _check_seqs(seqs, prompt_len)
    teacher_logits = _completion_logits(teacher, seqs, prompt_len)
    student_logits = _completion_logits(student, seqs, prompt_len)
    _same_vocabulary(student_logits, teacher_logits)
    log_t = F.log_softmax(teacher_logits, -1)
    log_s = F.log_softmax(student_logits, -1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (batch * n_new,)
    return kl.view(len(seqs), -1)


@torch.no_grad()
def solve_rate(
    model: nn.Module,
    task,
    digits: torch.Tensor,
    *,
    fmt: str = "trace",
    greedy: bool = True,
    temperature: float = 1.0,
    seed: int | torch.Generator = 0,
) -> float:
    """Share of ``task`` problems ``digits`` whose answer ``model`` gets right.

    ``task`` is a :class:`distill_lessons.tasks.RunningSum`; the model
    completes each prompt in format ``fmt`` (greedily by default) and the
    task's checker grades the answer.
    """
    completions = generate(
        model,
        task.prompts(digits),
        task.completion_len(fmt),
        greedy=greedy,
        temperature=temperature,
        seed=seed,
    )
    return float(task.check(digits, completions).float().mean())
