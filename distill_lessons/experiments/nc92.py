"""The long-lag experiment of Schmidhuber (1992), chapters 3 and 4.

    python -m distill_lessons.reproduce nc92 --seeds 10
    python -m distill_lessons.reproduce nc92 --seeds 3 --lag 1000
    python -m distill_lessons.reproduce nc92 --seeds 10 --paper

Prints a markdown table: for each method, the runs solved out of N within
the budget of training sequences (episodes per seed), the median sequences
to solve, and the 1992 paper's figures beside ours. Solved means at least
95% target accuracy on fresh episodes at an evaluation and at every later
one.
"""

from __future__ import annotations

import argparse
import time

import torch

from distill_lessons.chunker import LongLagConfig, train_long_lag

__all__ = ["main", "run"]

PAPER_CHUNKER = "13 of 17 runs under 5,000 sequences (the other 4 < 35,000)"
PAPER_CONVENTIONAL = "no significant progress in > 1,000,000 sequences"
CITATION = (
    "Paper: J. Schmidhuber, Learning complex, extended sequences using the "
    "principle of history compression, Neural Computation 4(2), 1992 "
    "(schmidhuber1992history)."
)


def _methods(args) -> list[tuple[str, LongLagConfig, int, str, str]]:
    """(name, config, budget, which net's accuracy counts, paper figure)."""
    base = dict(lag=args.lag, batch=args.batch, lr=args.lr)
    chunker = LongLagConfig(**base, imitation=args.imitation)
    rows = [
        (
            "chunker C (BPTT(3) automatiser)",
            chunker,
            args.sequences,
            "chunker",
            PAPER_CHUNKER,
        ),
        (
            "automatiser A alone, after collapse",
            chunker,
            args.sequences,
            "automatiser",
            "A learned to predict the targets itself",
        ),
    ]
    if "ablation" in args.methods:
        rows.append(
            (
                "automatiser A, no imitation term (lambda = 0)",
                LongLagConfig(**base, imitation=0.0),
                args.sequences,
                "automatiser",
                "not reported",
            )
        )
    if "bptt3" in args.methods:
        rows.append(
            (
                "tanh RNN, BPTT(3)",
                LongLagConfig(**base, chunker=False),
                args.baseline_sequences,
                "automatiser",
                PAPER_CONVENTIONAL,
            )
        )
    if "full" in args.methods:
        rows.append(
            (
                "tanh RNN, full BPTT",
                LongLagConfig(**base, chunker=False, truncation=None),
                args.baseline_sequences,
                "automatiser",
                PAPER_CONVENTIONAL,
            )
        )
    if "lstm" in args.methods:
        rows.append(
            (
                f"LSTM ({args.lstm_hidden} units, forget bias "
                f"{args.forget_bias:g}), full BPTT",
                LongLagConfig(
                    **base,
                    chunker=False,
                    truncation=None,
                    cell="lstm",
                    hidden=args.lstm_hidden,
                    forget_bias=args.forget_bias,
                ),
                args.baseline_sequences,
                "automatiser",
                "not in the paper",
            )
        )
    return rows


def run(args) -> list[dict]:
    """Train every method for ``args.seeds`` seeds; one dict per row."""
    out = []
    cache = {}
    for name, config, budget, who, paper in _methods(args):
        key = (repr(config), budget)
        if key not in cache:
            wall = time.perf_counter()
            cache[key] = (
                train_long_lag(
                    config,
                    seeds=args.seeds,
                    sequences=budget,
                    seed=args.seed,
                    stop_when_solved="chunker" if args.lag > 100 else True,
                ),
                time.perf_counter() - wall,
            )
        result, wall = cache[key]
        median = result.median(who)
        out.append(
            {
                "method": name,
                "solved": result.count(who),
                "seeds": args.seeds,
                "budget": budget,
                "median": median,
                "paper": paper,
                "cpu": result.cpu_seconds,
                "wall": wall,
            }
        )
    return out


def _table(rows, args) -> str:
    lines = [
        f"Lag {args.lag}; {args.batch} episode(s) per update, Adam "
        f"lr {args.lr:g}, gradient norm clipped at 1 per seed; tanh nets of "
        f"16 units; lambda = {args.imitation:g}; seed {args.seed}.",
        "",
        "| method | runs solved | budget (sequences per run) | median "
        "sequences to solve | paper (Schmidhuber 1992) | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        med = "-" if r["median"] is None else f"{r['median']:,.0f}"
        lines.append(
            f"| {r['method']} | {r['solved']} of {r['seeds']} | "
            f"{r['budget']:,} | {med} | {r['paper']} | {r['cpu']:.1f} |"
        )
    lines += ["", CITATION]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the table; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m distill_lessons.reproduce nc92",
        description="The 1992 long-lag experiment: chunker, automatiser, "
        "baselines.",
    )
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--lag", type=int, default=20)
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="episodes per update (the paper: 1)",
    )
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's regime: one episode per update, lambda = 1",
    )
    p.add_argument(
        "--sequences",
        type=int,
        default=None,
        help="budget per run for the chunker system",
    )
    p.add_argument("--baseline-sequences", type=int, default=None)
    p.add_argument("--imitation", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--methods",
        default=None,
        help="comma list from ablation,bptt3,full,lstm",
    )
    p.add_argument("--lstm-hidden", type=int, default=32)
    p.add_argument("--forget-bias", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.lag < 1:
        p.error(f"--lag must be >= 1, got {args.lag}")
    long = args.lag > 100
    if args.batch is None:
        # Long episodes cost much per update; fewer per update still learn.
        args.batch = 8 if long else 16
    if args.batch < 1:
        p.error(f"--batch must be >= 1, got {args.batch}")
    if args.paper:
        # One episode per update, as in 1992; every update is a Python
        # round trip, so the baselines get a smaller budget by default.
        args.batch, args.imitation = 1, 1.0
        if args.baseline_sequences is None:
            args.baseline_sequences = 5000
    if args.sequences is None:
        args.sequences = 1600 if long else 5000
    if args.baseline_sequences is None:
        args.baseline_sequences = 800 if long else 20000
    if args.methods is None:
        args.methods = "bptt3" if long else "ablation,bptt3,full,lstm"
    if args.paper and "lstm" in args.methods.split(","):
        args.methods = "ablation"
    args.methods = set(args.methods.split(","))
    torch.set_num_threads(1)
    wall = time.perf_counter()
    rows = run(args)
    print(_table(rows, args))
    print(f"\nTotal wall time {time.perf_counter() - wall:.0f} s.")
    return 0
