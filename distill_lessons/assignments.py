"""Student and instructor versions of the chapters, for teaching.

Every chapter's exercises follow one convention (CONTRIBUTING.md): a
solution sits in a cell tagged ``solution`` between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` lines, and cells tagged ``exercise-check`` test the
answer. This module turns each chapter into two notebooks: a student version
in which every solution region is replaced by a stub that raises
``NotImplementedError``, and an instructor version that keeps the solutions.
Both carry nbgrader cell metadata, so a teacher who grades with nbgrader can
use the instructor notebooks as nbgrader's source notebooks unchanged. The
book's page for instructors (``book/instructors.md``) explains the use::

    python -m distill_lessons.assignments build OUTDIR [--force]
        [--notebooks PATH ...]
    python -m distill_lessons.assignments grade PATH [PATH ...]

``grade`` runs handed-in notebooks and counts the check cells that pass,
for teachers who grade without nbgrader.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "CODE_STUB",
    "TEXT_STUB",
    "AssignmentError",
    "Built",
    "build",
    "default_notebooks",
    "grade",
    "instructor_notebook",
    "main",
    "student_notebook",
    "stub_solutions",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"

# The stubs nbgrader writes too, so a student sees the same thing either way.
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"

SOLUTION_TAG = "solution"
CHECK_TAG = "exercise-check"
# nbval and myst-nb both read this tag: the cell may raise without failing
# the run. Student notebooks put it on stubs and checks, which must raise.
RAISES_TAG = "raises-exception"
# Nothing is left to hide in a student notebook once the solution is gone.
HIDE_TAG = "hide-cell"

NBGRADER_SCHEMA = 3


class AssignmentError(ValueError):
    """A notebook breaks the solution-marker convention.

    The message names the notebook, the cell (counted from 1, as JupyterLab
    shows them when line numbers are on) and what is wrong.
    """


@dataclass(frozen=True)
class Built:
    """What :func:`build` wrote.

    ``student`` and ``instructor`` are the paths of the written notebooks,
    in the order of the sources; ``solutions`` and ``checks`` count the
    stubbed regions and the check cells over all notebooks.
    """

    student: list[Path]
    instructor: list[Path]
    solutions: int
    checks: int


def _tags(cell: dict, where: str = "a cell") -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    if not isinstance(tags, (list, tuple)) or not all(
        isinstance(t, str) for t in tags
    ):
        raise AssignmentError(
            f"{where}: metadata tags must be a list of strings, e.g. "
            f'["solution"], got {type(tags).__name__} {tags!r:.60}'
        )
    return list(tags)


def _marker(line: str) -> str | None:
    stripped = line.strip()
    if stripped in (BEGIN, END):
        return stripped
    return None


def stub_solutions(
    source: str, *, stub: str = CODE_STUB, where: str = "cell"
) -> tuple[str, int]:
    """Replace every solution region of ``source`` by ``stub``.

    A region runs from a line that reads ``### BEGIN SOLUTION`` to the next
    line that reads ``### END SOLUTION`` (surrounding spaces allowed); both
    marker lines go too. Each line of the stub is indented as the BEGIN line
    was, so a stub inside a function body stays inside it. Lines outside the
    regions are kept exactly.

    Returns the new source and the number of regions replaced. Raises
    :class:`AssignmentError` (naming ``where``) for an END without a BEGIN,
    a BEGIN inside a region, or a region that is never closed.
    """
    out: list[str] = []
    regions = 0
    opened_at: int | None = None
    indent = ""
    lines = source.split("\n")
    for number, line in enumerate(lines, start=1):
        marker = _marker(line)
        if marker == BEGIN:
            if opened_at is not None:
                raise AssignmentError(
                    f"{where}: line {number} opens a solution region inside "
                    f"the one opened on line {opened_at}; close it first "
                    f"with {END!r}"
                )
            opened_at = number
            indent = line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if opened_at is None:
                raise AssignmentError(
                    f"{where}: line {number} has {END!r} without a "
                    f"{BEGIN!r} before it"
                )
            out.extend(indent + s if s else s for s in stub.split("\n"))
            regions += 1
            opened_at = None
        elif opened_at is None:
            out.append(line)
    if opened_at is not None:
        raise AssignmentError(
            f"{where}: the solution region opened on line {opened_at} is "
            f"never closed; add a line {END!r}"
        )
    return "\n".join(out), regions


def _has_markers(source: str) -> bool:
    return any(_marker(line) for line in source.split("\n"))


def _grader_metadata(
    *, solution: bool, grade: bool, locked: bool, grade_id: str, points: int
) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": NBGRADER_SCHEMA,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return meta


def _validate(nb: nbformat.NotebookNode, name: str) -> None:
    """Check the whole notebook before anything is written."""
    for index, cell in enumerate(nb.cells, start=1):
        where = f"{name}, cell {index}"
        tags = _tags(cell, where)
        if SOLUTION_TAG in tags:
            # Parsing raises for mismatched markers.
            _, regions = stub_solutions(cell.source, where=where)
            if cell.cell_type == "code" and regions == 0:
                raise AssignmentError(
                    f"{where} is tagged {SOLUTION_TAG!r} but has no "
                    f"{BEGIN!r} ... {END!r} region; mark the lines a "
                    "student should write"
                )
            if CHECK_TAG in tags:
                raise AssignmentError(
                    f"{where} is tagged both {SOLUTION_TAG!r} and "
                    f"{CHECK_TAG!r}; a check must be a cell of its own"
                )
        elif _has_markers(cell.source):
            # Any kind of cell: an untagged markdown or raw cell would be
            # copied to the student with its solution in it.
            raise AssignmentError(
                f"{where} ({cell.cell_type}) has solution markers but is not "
                f"tagged {SOLUTION_TAG!r}; tag it (and 'hide-cell') or "
                "remove the markers"
            )


def _with_grader_metadata(
    nb: nbformat.NotebookNode, name: str, points: int
) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose solution and check cells carry nbgrader data."""
    nb = copy.deepcopy(nb)
    stem = Path(name).stem
    solution_count = 0
    check_count = 0
    for cell in nb.cells:
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            solution_count += 1
            cell.metadata["nbgrader"] = _grader_metadata(
                solution=True,
                grade=False,
                locked=False,
                grade_id=f"{stem}-solution-{solution_count}",
                points=0,
            )
        elif CHECK_TAG in tags:
            check_count += 1
            # A check is an nbgrader "autograder test": graded, read-only.
            cell.metadata["nbgrader"] = _grader_metadata(
                solution=False,
                grade=True,
                locked=True,
                grade_id=f"{stem}-check-{check_count}",
                points=points,
            )
    return nb


def instructor_notebook(
    nb: nbformat.NotebookNode, name: str = "notebook", *, points: int = 1
) -> nbformat.NotebookNode:
    """The instructor version: solutions kept, nbgrader metadata added.

    ``name`` is used in error messages and in the nbgrader ``grade_id`` of
    each cell; ``points`` is what each check cell is worth. Outputs are
    cleared. The input is not changed. Raises :class:`AssignmentError` if
    the notebook breaks the solution-marker convention.
    """
    _validate(nb, name)
    out = _with_grader_metadata(nb, name, points)
    _clear_outputs(out)
    return out


def student_notebook(
    nb: nbformat.NotebookNode, name: str = "notebook", *, points: int = 1
) -> nbformat.NotebookNode:
    """The student version: each solution region replaced by a stub.

    Code regions become ``raise NotImplementedError()`` (after a
    ``# YOUR CODE HERE`` line); regions in markdown cells tagged
    ``solution`` become ``YOUR ANSWER HERE``, and so does a whole markdown
    solution cell without markers; a markdown solution cell keeps only the
    attachments (images) its stubbed text still refers to, so a drawn
    answer does not reach the student. Check cells are kept. Stubs and checks
    get the ``raises-exception`` tag, so the student notebook still runs
    from top to bottom under nbval or a book build while it is unsolved,
    and lose ``hide-cell``, since there is no answer left to hide.
    """
    _validate(nb, name)
    out = _with_grader_metadata(nb, name, points)
    _clear_outputs(out)
    for index, cell in enumerate(out.cells, start=1):
        tags = _tags(cell)
        if SOLUTION_TAG not in tags and CHECK_TAG not in tags:
            continue
        if SOLUTION_TAG in tags:
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            source, regions = stub_solutions(
                cell.source, stub=stub, where=f"{name}, cell {index}"
            )
            cell.source = source if regions else TEXT_STUB
            _drop_unused_attachments(cell)
            tags = [t for t in tags if t != HIDE_TAG]
        if cell.cell_type == "code" and RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
        cell.metadata["tags"] = tags
    return out


def _drop_unused_attachments(cell: nbformat.NotebookNode) -> None:
    """Keep only the attachments the cell's source still names."""
    attachments = cell.get("attachments")
    if attachments is None:
        return
    named = set(re.findall(r"attachment:([^\s)\"'>]+)", cell.source))
    kept = {k: v for k, v in attachments.items() if k in named}
    if kept:
        cell.attachments = kept
    else:
        del cell["attachments"]


def _clear_outputs(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def default_notebooks() -> list[Path]:
    """The chapters of a source checkout: ``notebooks/NN_*.ipynb``."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def _expand(paths: Iterable[Path | str]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.glob("*.ipynb")))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
        elif not path.exists():
            raise ValueError(
                f"notebooks: no such file or folder {str(path)!r}"
            )
        else:
            raise ValueError(
                f"notebooks must be .ipynb files or folders holding them, "
                f"got {str(path)!r}"
            )
    return found


def build(
    outdir: Path | str,
    notebooks: Sequence[Path | str] | None = None,
    *,
    force: bool = False,
    points: int = 1,
) -> Built:
    """Write ``outdir/student/`` and ``outdir/instructor/``.

    ``notebooks`` are .ipynb files or folders of them (default: every
    chapter in the checkout's ``notebooks/``). Every notebook is read and
    checked before anything is written, so a bad notebook leaves no half
    build behind. An existing ``student`` or ``instructor`` folder is
    refused unless ``force`` is true, in which case those two folders (and
    nothing else in ``outdir``) are replaced. The new folders are first
    written to a temporary folder inside ``outdir``; the old ones are
    replaced only once everything is written, so a failed build leaves them
    as they were.

    Raises ``ValueError`` for no notebooks, a path that is not a notebook,
    ``points`` < 0, folders that exist without ``force``, an ``outdir``
    that is a file, or a ``student`` or ``instructor`` that is a file or a
    symbolic link (never replaced, even with ``force``); and
    :class:`AssignmentError` for a notebook that breaks the convention.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise ValueError(f"points must be an integer >= 0, got {points!r}")
    sources = _expand(default_notebooks() if notebooks is None else notebooks)
    if not sources:
        raise ValueError(
            "notebooks: no .ipynb files found; pass --notebooks with the "
            "chapters to convert"
        )
    names = [p.name for p in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"notebooks: two sources share the file name {duplicates[0]!r}"
        )

    outdir = Path(outdir)
    probe = outdir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the nearest part of the path that exists
    if not probe.is_dir():
        raise ValueError(
            f"outdir: {probe} is a file, not a folder; pass another OUTDIR"
        )
    targets = {
        "student": outdir / "student",
        "instructor": outdir / "instructor",
    }
    for target in targets.values():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            kind = "a symbolic link" if target.is_symlink() else "a file"
            raise ValueError(
                f"outdir: {target} is {kind}, not a folder; it is never "
                "replaced, not even with --force: move it away or pass "
                "another OUTDIR"
            )
    existing = [p for p in targets.values() if p.exists()]
    if existing and not force:
        raise ValueError(
            f"outdir: {existing[0]} already exists; pass --force to replace "
            "the student and instructor folders"
        )

    versions: list[tuple[str, nbformat.NotebookNode, nbformat.NotebookNode]]
    versions = []
    solutions = checks = 0
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        student = student_notebook(nb, path.name, points=points)
        instructor = instructor_notebook(nb, path.name, points=points)
        for cell in instructor.cells:
            tags = _tags(cell)
            if SOLUTION_TAG in tags:
                solutions += max(1, stub_solutions(cell.source)[1])
            checks += CHECK_TAG in tags
        versions.append((path.name, student, instructor))

    _write_then_replace(outdir, targets, versions)
    written_student = [targets["student"] / name for name, _, _ in versions]
    written_instructor = [
        targets["instructor"] / name for name, _, _ in versions
    ]
    return Built(written_student, written_instructor, solutions, checks)


def _write_then_replace(
    outdir: Path,
    targets: dict[str, Path],
    versions: list[tuple[str, nbformat.NotebookNode, nbformat.NotebookNode]],
) -> None:
    """Write both folders to a temporary folder, then swap them in.

    The folders already in place are moved aside (renames inside
    ``outdir``) and deleted only after both new ones are in place; if
    anything fails, they are put back.
    """
    created = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".assignments-", dir=outdir))
    except OSError:
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise
    moved: list[tuple[Path, Path]] = []  # (aside, original place)
    placed: list[Path] = []
    try:
        for key in targets:
            (staging / key).mkdir()
        for name, student, instructor in versions:
            nbformat.write(student, staging / "student" / name)
            nbformat.write(instructor, staging / "instructor" / name)
        for key, target in targets.items():
            if target.exists():
                aside = staging / f"old-{key}"
                target.rename(aside)
                moved.append((aside, target))
            (staging / key).rename(target)
            placed.append(target)
    except BaseException:
        for target in placed:
            shutil.rmtree(target, ignore_errors=True)
        restored = True
        for aside, target in moved:
            try:
                aside.rename(target)
            except OSError:
                restored = False  # keep staging: the old folder is in it
        if restored:
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                shutil.rmtree(outdir, ignore_errors=True)
        raise
    shutil.rmtree(staging)


@dataclass(frozen=True)
class Grade:
    """The checks of one executed notebook.

    ``failed`` lists the failing check cells, counted from 1 among all
    cells; ``error`` is set when the notebook could not be run at all.
    """

    notebook: Path
    passed: int
    total: int
    failed: list[int]
    error: str = ""


def grade(paths: Sequence[Path | str], *, timeout: int = 600) -> list[Grade]:
    """Run each notebook in a fresh kernel and count its passing checks.

    Every cell runs, even after an error (as a student's half-finished
    notebook needs); a check cell passes when it raises nothing. The kernel
    starts in the notebook's own folder. ``timeout`` is in seconds per cell.
    Raises ``ValueError`` for paths that are not notebooks or folders of
    them, or ``timeout`` < 1.
    """
    from nbclient import NotebookClient

    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or timeout < 1
    ):
        raise ValueError(f"timeout must be an integer >= 1, got {timeout!r}")
    notebooks = _expand(paths)
    if not notebooks:
        raise ValueError("paths: no .ipynb files found")
    grades = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        checks = [
            i
            for i, c in enumerate(nb.cells, 1)
            if CHECK_TAG in _tags(c, f"{path}, cell {i}")
        ]
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        try:
            client.execute()
        except Exception as err:  # a dead kernel or a timeout: no points
            grades.append(
                Grade(path, 0, len(checks), checks, f"{type(err).__name__}")
            )
            continue
        failed = [
            i
            for i in checks
            if any(
                out.get("output_type") == "error"
                for out in nb.cells[i - 1].get("outputs", [])
            )
        ]
        grades.append(
            Grade(path, len(checks) - len(failed), len(checks), failed)
        )
    return grades


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m distill_lessons.assignments",
        description="Student and instructor versions of the chapters.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser(
        "build",
        help="write OUTDIR/student/ and OUTDIR/instructor/",
        description=(
            "Write a student version of every chapter (solutions replaced "
            "by stubs that raise NotImplementedError) to OUTDIR/student/ "
            "and an instructor version (solutions kept) to "
            "OUTDIR/instructor/, both with nbgrader cell metadata."
        ),
    )
    cmd.add_argument("outdir", type=Path, help="folder to write into")
    cmd.add_argument(
        "--force",
        action="store_true",
        help="replace existing student/ and instructor/ folders",
    )
    cmd.add_argument(
        "--notebooks",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="notebooks or folders (default: the chapters in notebooks/)",
    )
    cmd.add_argument(
        "--points",
        type=int,
        default=1,
        help="nbgrader points for each check cell (default: 1)",
    )
    cmd = commands.add_parser(
        "grade",
        help="run notebooks and count the check cells that pass",
        description=(
            "Run each notebook in a fresh kernel, going on after errors, "
            "and print how many of its exercise-check cells pass."
        ),
    )
    cmd.add_argument(
        "paths", nargs="+", type=Path, help="notebooks or folders"
    )
    cmd.add_argument(
        "--timeout",
        type=int,
        default=600,
        help="seconds allowed for one cell (default: 600)",
    )
    args = parser.parse_args(argv)

    if args.command == "grade":
        try:
            grades = grade(args.paths, timeout=args.timeout)
        except (ValueError, OSError) as err:
            sys.stderr.write(f"error: {err}\n")
            return 2
        lines = ["| notebook | checks passed | failing check cells |"]
        lines.append("|---|---|---|")
        for g in grades:
            failing = ", ".join(map(str, g.failed)) or "none"
            if g.error:
                failing += f" (stopped: {g.error})"
            lines.append(
                f"| {g.notebook} | {g.passed} of {g.total} | {failing} |"
            )
        sys.stdout.write("\n".join(lines) + "\n")
        return 0

    try:
        built = build(
            args.outdir, args.notebooks, force=args.force, points=args.points
        )
    except (ValueError, OSError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write(
        f"wrote {len(built.student)} notebooks to "
        f"{args.outdir / 'student'} ({built.solutions} solutions stubbed, "
        f"{built.checks} check cells kept) and to "
        f"{args.outdir / 'instructor'}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
