"""How long each chapter takes: run each notebook alone, in a fresh kernel.

    python tools/notebook_times.py                 # every chapter, table out
    python tools/notebook_times.py --write         # also update book/status.md
    python tools/notebook_times.py notebooks/01_prediction_and_surprise.ipynb

Each notebook is executed from top to bottom by nbclient in a new
``python3`` kernel started in ``notebooks/``, one after another, never two
at once. For each it reports the wall-clock time and the CPU time of the
kernel process (user + system, read from the finished child process), and
whether it ran without error. Run it on a quiet machine: two PyTorch
processes on two cores slow each other down many times over, while CPU time
stays close to honest.

The table is printed as markdown; ``--write`` puts it into
``book/status.md`` between the two ``<!-- notebook-times -->`` markers,
with the date and the machine it was measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
STATUS = ROOT / "book" / "status.md"
START = "<!-- notebook-times:start -->"
END = "<!-- notebook-times:end -->"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_notebook(path: Path, timeout: int) -> dict:
    """Execute one notebook; return its title, times and outcome."""
    nb = nbformat.read(path, as_version=4)
    title = path.stem
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            title = cell.source.splitlines()[0][2:].strip()
            break
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    cpu0, wall0 = children_cpu_seconds(), time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1][:120]
    except Exception as err:  # a dead kernel or a timeout, reported as such
        error = f"{type(err).__name__}: {err}"[:120]
    # The kernel has exited and been reaped here, so its CPU time is in.
    wall = time.perf_counter() - wall0
    cpu = children_cpu_seconds() - cpu0
    return {
        "path": path,
        "title": title,
        "wall": wall,
        "cpu": cpu,
        "error": error,
    }


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def table(rows: list[dict]) -> str:
    lines = [
        "| chapter | wall-clock time | CPU time | runs |",
        "|---|---|---|---|",
    ]
    for row in rows:
        link = f"[{row['title']}](../notebooks/{row['path'].name})"
        outcome = "yes" if not row["error"] else f"no: {row['error']}"
        lines.append(
            f"| {link} | {minutes(row['wall'])} | {minutes(row['cpu'])} "
            f"| {outcome} |"
        )
    total_wall = sum(r["wall"] for r in rows)
    total_cpu = sum(r["cpu"] for r in rows)
    lines.append(
        f"| **all chapters** | **{minutes(total_wall)}** "
        f"| **{minutes(total_cpu)}** | |"
    )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, torch {torch.__version__}"
    )


def write_status(text: str) -> None:
    page = STATUS.read_text(encoding="utf-8")
    if START not in page or END not in page:
        raise SystemExit(f"{STATUS} lacks the markers {START} and {END}")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    STATUS.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to time (default: notebooks/NN_*.ipynb)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"update the table in {STATUS.relative_to(ROOT)}",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=1800,
        help="seconds allowed for one cell (default: 1800)",
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(
        (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    if not paths:
        parser.error("no notebooks found")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    rows = []
    for path in paths:
        sys.stderr.write(f"running {path.name} ...\n")
        rows.append(time_notebook(path.resolve(), args.timeout))
        sys.stderr.write(
            f"  {minutes(rows[-1]['wall'])} wall, "
            f"{minutes(rows[-1]['cpu'])} CPU\n"
        )
    text = (
        f"Measured on {dt.date.today().isoformat()}, one notebook at a time, "
        f"on {machine()}.\n\n{table(rows)}"
    )
    sys.stdout.write(text + "\n")
    if args.write:
        write_status(text)
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
