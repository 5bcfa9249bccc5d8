"""Command line: reproduce a chapter's central experiment and print a table.

    python -m distill_lessons.reproduce --list
    python -m distill_lessons.reproduce nc92 --seeds 10

Each experiment lives in the module that the chapter uses; this file only
finds it. An experiment module provides ``main(argv) -> int`` and prints a
markdown table to standard output.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["EXPERIMENTS", "main"]

EXPERIMENTS: dict[str, tuple[str, str]] = {
    "nc92": (
        "distill_lessons.experiments.nc92",
        "chapters 3-4: the 1992 long-lag experiment with the chunker",
    ),
    "hinton2015": (
        "distill_lessons.experiments.hinton2015",
        "chapter 5: soft targets on the scikit-learn digits",
    ),
    "tokenkd": (
        "distill_lessons.experiments.tokenkd",
        "chapter 6: token-level distillation of a tiny GPT on real text",
    ),
    "gkd": (
        "distill_lessons.experiments.gkd",
        "chapter 7: word-level, sequence-level and on-policy distillation",
    ),
    "cot": (
        "distill_lessons.experiments.cot",
        "chapter 8: distilled chain of thought",
    ),
    "onebignet": (
        "distill_lessons.experiments.onebignet",
        "chapter 9: a planner collapsed into one big net",
    ),
}


def _usage() -> str:
    lines = ["usage: python -m distill_lessons.reproduce NAME [options]", ""]
    lines.append("experiments:")
    for name, (_, about) in EXPERIMENTS.items():
        lines.append(f"  {name:<11} {about}")
    lines.append("")
    lines.append("NAME --help lists an experiment's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the experiment named by ``argv[0]`` with the remaining options."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in EXPERIMENTS:
        print(
            f"error: unknown experiment {name!r}; "
            f"choose from {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    module_name, _ = EXPERIMENTS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(
            f"error: experiment {name!r} is not built yet ({module_name})",
            file=sys.stderr,
        )
        return 2
    try:
        return int(module.main(rest) or 0)
    except (ValueError, FileNotFoundError) as exc:
        # A bad option value or a missing input file: say so, no traceback.
        print(f"error: {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
