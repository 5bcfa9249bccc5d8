"""Chapter 8: distilled chain of thought on the running sum mod 10.

A teacher learns to write its steps; it then writes traces for fresh
questions, a checker keeps the right ones, and two students of equal size
learn from the same questions: one from the whole traces, one from the
answers alone. ``python -m distill_lessons.reproduce cot --seeds 3``
prints one row per seed.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from distill_lessons.onpolicy import solve_rate, tiny_gpt, train_sequences
from distill_lessons.sampling import teacher_dataset
from distill_lessons.tasks import RunningSum

__all__ = [
    "CotConfig",
    "train_teacher",
    "distillation_set",
    "train_student",
    "run_seed",
    "main",
]


@dataclass(frozen=True)
class CotConfig:
    """Sizes and budgets of the chapter 8 experiment (defaults: the book's)."""

    k: int = 8
    teacher_examples: int = 4000
    teacher_steps: int = 400
    teacher_width: int = 64
    student_width: int = 48
    student_steps: int = 600
    questions: int = 1000
    test_size: int = 1000
    layers: int = 2


def train_teacher(cfg: CotConfig, *, seed: int = 100):
    """A teacher trained on ground-truth traces; returns it in eval mode."""
    task = RunningSum(cfg.k)
    digits = task.problems(cfg.teacher_examples, seed=seed + 1)
    teacher = tiny_gpt(
        task.vocab_size,
        task.seq_len("trace"),
        d_model=cfg.teacher_width,
        n_layers=cfg.layers,
        seed=seed,
    )
    train_sequences(
        teacher,
        task.sequences(digits),
        task.prompt_len,
        steps=cfg.teacher_steps,
        seed=seed,
    )
    return teacher


def distillation_set(
    teacher, task: RunningSum, n: int, *, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresh questions, the teacher's greedy traces, the checker's verdict.

    Returns ``(digits, traces, kept)``: all ``n`` questions ``(n, k)``, the
    accepted traces ``(n_kept, seq_len)`` and the bool mask ``(n,)``.
    """
    digits = task.problems(n, seed=seed)
    traces, kept = teacher_dataset(
        teacher,
        task.prompts(digits),
        task.completion_len("trace"),
        accept=lambda c: task.check(digits, c),
        greedy=True,
    )
    return digits, traces, kept


def train_student(
    task: RunningSum,
    seqs: torch.Tensor,
    cfg: CotConfig,
    *,
    seed: int,
    steps: int | None = None,
):
    """A student of ``cfg.student_width`` trained by cross-entropy on seqs."""
    student = tiny_gpt(
        task.vocab_size,
        task.seq_len("trace"),
        d_model=cfg.student_width,
        n_layers=cfg.layers,
        seed=seed,
    )
    train_sequences(
        student,
        seqs,
        task.prompt_len,
        steps=steps or cfg.student_steps,
        seed=seed,
    )
    return student


def answers_from_traces(task: RunningSum, traces: torch.Tensor):
    """The answer-only sequences ``(n, seq_len('answer'))`` of traces.

    The prompt is kept and the steps are dropped: ``>``, the teacher's
    answer and ``E`` follow the question directly.
    """
    prompt = traces[:, : task.prompt_len]
    tail = traces[:, -3:]  # (n, 3): '>', answer, 'E'
    return torch.cat([prompt, tail], dim=1)


def run_seed(teacher, cfg: CotConfig, seed: int) -> dict[str, float]:
    """Both students for one seed; accuracies on fresh problems and times."""
    task = RunningSum(cfg.k)
    test = task.problems(cfg.test_size, seed=12345)
    _, traces, kept = distillation_set(
        teacher, task, cfg.questions, seed=1000 + seed
    )
    row: dict[str, float] = {
        "seed": seed,
        "teacher": solve_rate(teacher, task, test),
        "kept": float(kept.float().mean()),
    }
    start = time.process_time()
    trace_student = train_student(task, traces, cfg, seed=seed)
    row["trace_cpu_s"] = time.process_time() - start
    row["trace"] = solve_rate(trace_student, task, test)

    start = time.process_time()
    answer_student = train_student(
        task, answers_from_traces(task, traces), cfg, seed=seed
    )
    row["answer_cpu_s"] = time.process_time() - start
    row["answer"] = solve_rate(answer_student, task, test, fmt="answer")
    row["trace_weights"] = trace_student.num_parameters()
    row["answer_weights"] = answer_student.num_parameters()
    row["examples"] = len(traces)
    return row


def main(argv: list[str] | None = None) -> int:
    """Print chapter 8's table: one row per seed, then the mean."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce cot",
        description="Distilled chain of thought on the running sum mod 10.",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=8, help="digits per problem")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    torch.set_num_threads(1)
    cfg = CotConfig(k=args.k)
    teacher = train_teacher(cfg)

    print(
        "| seed | teacher | kept | trace student | answer-only student "
        "| margin (points) |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for seed in range(args.seeds):
        row = run_seed(teacher, cfg, seed)
        rows.append(row)
        margin = 100 * (row["trace"] - row["answer"])
        print(
            f"| {seed} | {row['teacher']:.3f} | {row['kept']:.3f} "
            f"| {row['trace']:.3f} | {row['answer']:.3f} | {margin:+.1f} |",
            flush=True,
        )
    mean = {
        key: sum(r[key] for r in rows) / len(rows)
        for key in ("teacher", "kept", "trace", "answer")
    }
    margin = 100 * (mean["trace"] - mean["answer"])
    print(
        f"| mean | {mean['teacher']:.3f} | {mean['kept']:.3f} "
        f"| {mean['trace']:.3f} | {mean['answer']:.3f} | {margin:+.1f} |"
    )
    return 0
