"""Chapter 6's central table: token-level distillation on real text.

    python -m distill_lessons.reproduce tokenkd --seeds 3

A 4-layer TinyGPT teacher trains on the standard library's source code
(or on ``--corpus FILE``); then, for each seed, a 2-layer student trains
from scratch and another, from the same initial weights and on the same
batches, by forward KL to the teacher's cached logits. Prints a markdown
table of held-out bits per character and the paired differences.
"""

from __future__ import annotations

import argparse
import time

from distill_lessons import lm, losses, text

__all__ = ["run", "main"]


def run(
    seeds: list[int],
    *,
    teacher_steps: int = 250,
    student_steps: int = 200,
    batch_size: int = 16,
    corpus_path: str | None = None,
) -> dict:
    """Train the teacher once and a scratch/distilled pair per seed.

    Returns ``{"teacher": bpc, "rows": [(seed, scratch, distilled)],
    "seconds": cpu_seconds}`` with bits per character on 128 held-out
    windows of 64 bytes.
    """
    start = time.process_time()
    corpus = text.load_corpus(corpus_path)
    context = 64
    eval_x, eval_y = text.sample_windows(
        corpus.held_out, 128, context, seed=1234
    )
    teacher = lm.make_model(corpus.vocab_size, lm.TEACHER, seed=0)
    teacher_starts = text.batch_starts(
        len(corpus.train),
        steps=teacher_steps,
        batch_size=32,
        context=context,
        seed=7,
    )
    lm.train_lm(teacher, corpus.train, teacher_starts, lr=2e-3)
    teacher_bpc = lm.bits_per_token(teacher, eval_x, eval_y)

    starts = text.batch_starts(
        len(corpus.train),
        steps=student_steps,
        batch_size=batch_size,
        context=context,
        seed=99,
    )
    cache = lm.cache_teacher(teacher, corpus.train, starts)

    def forward_kl(step, logits, targets):
        return losses.forward_kl(logits, cache[step])

    rows = []
    for seed in seeds:
        result = []
        for loss in (None, forward_kl):
            student = lm.make_model(corpus.vocab_size, lm.STUDENT, seed=seed)
            lm.train_lm(student, corpus.train, starts, lr=3e-3, loss=loss)
            result.append(lm.bits_per_token(student, eval_x, eval_y))
        rows.append((seed, *result))
    return {
        "teacher": teacher_bpc,
        "rows": rows,
        "seconds": time.process_time() - start,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce tokenkd",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--teacher-steps", type=int, default=250)
    parser.add_argument("--student-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--corpus", default=None, help="a text file")
    args = parser.parse_args(argv)
    out = run(
        list(range(args.seeds)),
        teacher_steps=args.teacher_steps,
        student_steps=args.student_steps,
        batch_size=args.batch_size,
        corpus_path=args.corpus,
    )
    print(
        f"teacher ({args.teacher_steps} steps): {out['teacher']:.3f} "
        "held-out bits per character\n"
    )
    print("| seed | scratch | forward KL | difference |")
    print("|---:|---:|---:|---:|")
    for seed, scratch, distilled in out["rows"]:
        print(
            f"| {seed} | {scratch:.3f} | {distilled:.3f} | "
            f"{distilled - scratch:+.3f} |"
        )
    print(f"\n{out['seconds']:.0f} s of CPU time")
    return 0
