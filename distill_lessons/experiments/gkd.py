"""Chapter 7: word-level, sequence-level and on-policy distillation.

The task is the running sum in the *copy* format: each step copies a digit
of the question, then writes the new running sum. The teacher learns from
demonstrations in which copies sometimes slip while the sums stay right,
so it learns to read the question, not its own copy, and recovers from a
miscopy; students that never see a slip do not.
``python -m distill_lessons.reproduce gkd --seeds 3`` prints the table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from functools import partial

import torch

from distill_lessons.losses import forward_kl, generalized_jsd, reverse_kl
from distill_lessons.onpolicy import (
    tiny_gpt,
    token_divergence,
    train_on_policy,
    train_sequences,
)
from distill_lessons.sampling import generate, teacher_dataset
from distill_lessons.tasks import RunningSum

__all__ = [
    "GkdConfig",
    "DIVERGENCES",
    "train_teacher",
    "new_student",
    "recovery_rate",
    "exposure",
    "sample_diversity",
    "evaluate",
    "run_seed",
    "main",
]

FMT = "copy"

DIVERGENCES = {
    "forward KL": forward_kl,
    "reverse KL": reverse_kl,
    "JSD(0.5)": partial(generalized_jsd, beta=0.5),
}
"""The three divergences of chapter 6, as ``(student, teacher) -> loss``."""


@dataclass(frozen=True)
class GkdConfig:
    """Sizes and budgets of the chapter 7 experiment (defaults: the book's)."""

    k: int = 6
    copy_slip_prob: float = 0.1
    teacher_examples: int = 4000
    teacher_steps: int = 800
    teacher_width: int = 64
    student_width: int = 32
    student_steps: int = 800
    questions: int = 2000
    continue_steps: int = 200
    continue_lr: float = 1e-3
    test_size: int = 500


def train_teacher(cfg: GkdConfig, *, seed: int = 100):
    """A teacher trained on demonstrations with slipped copies."""
    task = RunningSum(cfg.k)
    digits = task.problems(cfg.teacher_examples, seed=seed + 1)
    demos = task.sequences(
        digits, FMT, copy_slip_prob=cfg.copy_slip_prob, seed=seed + 2
    )
    teacher = tiny_gpt(
        task.vocab_size,
        task.seq_len(FMT),
        d_model=cfg.teacher_width,
        n_layers=2,
        seed=seed,
    )
    train_sequences(
        teacher, demos, task.prompt_len, steps=cfg.teacher_steps, seed=seed
    )
    return teacher


def new_student(cfg: GkdConfig, seed: int):
    """An untrained student: two layers of width ``cfg.student_width``."""
    task = RunningSum(cfg.k)
    return tiny_gpt(
        task.vocab_size,
        task.seq_len(FMT),
        d_model=cfg.student_width,
        n_layers=2,
        seed=seed,
    )


@torch.no_grad()
def recovery_rate(
    model, task: RunningSum, digits: torch.Tensor, *, step: int = 1
) -> float:
    """Share of right answers after a forced miscopy at ``step`` (0-based).

    The prefix is the right completion up to the copy of digit ``step``,
    which is replaced by a wrong digit; the model continues greedily.
    A model that reads the question recovers; one that adds its own copy
    carries the error to the answer.
    """
    seqs = task.sequences(digits, FMT)
    at = task.prompt_len + 2 * step  # the position of that copy
    shift = torch.arange(len(digits)) % 9 + 1  # a wrong digit, never 0
    seqs[:, at] = (seqs[:, at] + shift) % 10
    rest = generate(
        model, seqs[:, : at + 1], seqs.shape[1] - at - 1, greedy=True
    )
    completion = torch.cat([seqs[:, task.prompt_len : at + 1], rest], 1)
    return float(task.check(digits, completion).float().mean())


@torch.no_grad()
def exposure(
    student, teacher, task: RunningSum, digits: torch.Tensor, *, seed: int
) -> dict[str, float]:
    """Per-token KL(teacher || student) on teacher and on own prefixes.

    ``teacher_prefixes``: the teacher's greedy completions;
    ``own_prefixes``: the student's own samples at temperature 1. Both in
    nats per completion token; ``gap`` is their difference.
    """
    prompts = task.prompts(digits)
    n_new = task.completion_len(FMT)
    by_teacher = generate(teacher, prompts, n_new, greedy=True)
    by_student = generate(student, prompts, n_new, seed=seed)
    p = task.prompt_len
    on_teacher = token_divergence(
        student, teacher, torch.cat([prompts, by_teacher], 1), p
    ).mean()
    on_own = token_divergence(
        student, teacher, torch.cat([prompts, by_student], 1), p
    ).mean()
    return {
        "teacher_prefixes": float(on_teacher),
        "own_prefixes": float(on_own),
        "gap": float(on_own - on_teacher),
        "sampled_accuracy": float(
            task.check(digits, by_student).float().mean()
        ),
        "miscopy_rate": float(
            (by_student[:, 0 : 2 * task.k : 2] != digits).float().mean()
        ),
    }


@torch.no_grad()
def sample_diversity(
    model, task: RunningSum, digits: torch.Tensor, *, n: int = 16, seed: int
) -> float:
    """Mean number of distinct completions among ``n`` samples per prompt."""
    prompts = task.prompts(digits).repeat_interleave(n, dim=0)
    samples = generate(model, prompts, task.completion_len(FMT), seed=seed)
    samples = samples.view(len(digits), n, -1)  # (questions, n, n_new)
    return sum(len({tuple(s) for s in row.tolist()}) for row in samples) / len(
        digits
    )


def evaluate(model, teacher, task, test, *, seed: int = 0) -> dict:
    """Greedy accuracy, recovery, exposure and diversity of one model."""
    completions = generate(
        model, task.prompts(test), task.completion_len(FMT), greedy=True
    )
    row = {
        "greedy_accuracy": float(task.check(test, completions).float().mean()),
        "recovery": recovery_rate(model, task, test),
        "distinct": sample_diversity(model, task, test[:50], seed=seed),
    }
    row.update(exposure(model, teacher, task, test, seed=seed))
    return row


def run_seed(teacher, cfg: GkdConfig, seed: int) -> dict[str, dict]:
    """Every student of chapter 7 for one seed; returns name -> metrics."""
    task = RunningSum(cfg.k)
    test = task.problems(cfg.test_size, seed=54321)
    p = task.prompt_len
    questions = task.problems(cfg.questions, seed=2000 + seed)
    demos = task.sequences(
        questions, FMT, copy_slip_prob=cfg.copy_slip_prob, seed=3000 + seed
    )
    by_teacher, _ = teacher_dataset(
        teacher, task.prompts(questions), task.completion_len(FMT)
    )
    steps = cfg.student_steps
    out: dict[str, dict] = {}
    models = {}

    start = time.process_time()
    models["data alone"] = new_student(cfg, seed)
    train_sequences(models["data alone"], demos, p, steps=steps, seed=seed)
    models["word-level"] = new_student(cfg, seed)
    train_on_policy(
        models["word-level"],
        teacher,
        demos,
        p,
        forward_kl,
        lmbda=0.0,
        steps=steps,
        seed=seed,
    )
    models["sequence-level"] = new_student(cfg, seed)
    train_sequences(
        models["sequence-level"], by_teacher, p, steps=steps, seed=seed
    )
    runs = [("off-policy forward KL", forward_kl, 0.0)] + [
        (f"on-policy {name}", div, 1.0) for name, div in DIVERGENCES.items()
    ]
    for name, div, lmbda in runs:
        models[name] = new_student(cfg, seed)
        models[name].load_state_dict(models["sequence-level"].state_dict())
        train_on_policy(
            models[name],
            teacher,
            by_teacher,
            p,
            div,
            lmbda=lmbda,
            steps=cfg.continue_steps,
            lr=cfg.continue_lr,
            seed=seed,
        )
    cpu = time.process_time() - start
    for name, model in models.items():
        out[name] = evaluate(model, teacher, task, test, seed=seed)
    out["cpu_s"] = {"train": cpu}
    return out


def main(argv: list[str] | None = None) -> int:
    """Print chapter 7's table, one block of rows per seed."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce gkd",
        description="Word-level, sequence-level and on-policy distillation.",
    )
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    torch.set_num_threads(1)
    cfg = GkdConfig()
    teacher = train_teacher(cfg)
    task = RunningSum(cfg.k)
    test = task.problems(cfg.test_size, seed=54321)
    cols = [
        "greedy_accuracy",
        "sampled_accuracy",
        "recovery",
        "teacher_prefixes",
        "own_prefixes",
        "gap",
        "miscopy_rate",
        "distinct",
    ]
    print("| seed | model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")

    def line(seed, name, row):
        cells = " | ".join(f"{row[c]:.3f}" for c in cols)
        print(f"| {seed} | {name} | {cells} |", flush=True)

    line("-", "teacher", evaluate(teacher, teacher, task, test))
    for seed in range(args.seeds):
        for name, row in run_seed(teacher, cfg, seed).items():
            if name != "cpu_s":
                line(seed, name, row)
    return 0
