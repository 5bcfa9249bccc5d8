"""Student and instructor notebooks (distill_lessons.assignments).

The first tests use small notebooks made here, with expected sources written
out by hand. The tests at the end run the real chapters: for each, only the
cells its exercises need are executed, in one fresh kernel, and each
exercise runs twice in a row, first from the student version (every check
must fail) and then from the instructor version (every check must pass).
The two runs differ only in the stubs, so a failure in the student run is
caused by the stub and by nothing else.

Running every generated notebook in full under nbval doubles the time of
the notebooks, so that test is opt-in: set DISTILL_LESSONS_FULL=1. With
DISTILL_LESSONS_QUICK=1 the exercise test skips the chapters whose exercises
need more than half of the chapter's code cells.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import os
import subprocess
import symtable
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from distill_lessons import assignments
from distill_lessons.assignments import (
    CODE_STUB,
    TEXT_STUB,
    AssignmentError,
    build,
    instructor_notebook,
    stub_solutions,
    student_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FULL = os.environ.get("DISTILL_LESSONS_FULL") == "1"
# To save CI time, skip the chapters whose exercises need most of the
# chapter to run (their checks use models the chapter trains).
QUICK = os.environ.get("DISTILL_LESSONS_QUICK") == "1"


def code(source, *tags):
    return new_code_cell(source, metadata={"tags": list(tags)})


def tags_of(cell):
    return cell.metadata.get("tags", [])


def small_chapter():
    """A chapter in miniature: set-up, one claim, three kinds of exercise."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 0. A tiny chapter"),
            code("import math\n\nSEED = 0"),
            code("base = 3"),
            code("assert base == 3", "remove-cell", "check-claims"),
            new_markdown_cell("**Exercise 1.** Write `double`."),
            code(
                "def double(x):\n"
                "    ### BEGIN SOLUTION\n"
                "    return 2 * x\n"
                "    ### END SOLUTION",
                "solution",
                "hide-cell",
            ),
            code("assert double(base) == 6", "exercise-check"),
            new_markdown_cell("**Exercise 2.** Store the answer."),
            code(
                "### BEGIN SOLUTION\nanswer = math.log2(8)\n### END SOLUTION",
                "solution",
                "hide-cell",
            ),
            code("assert answer == base", "exercise-check"),
            new_markdown_cell(
                "Derivation:\n### BEGIN SOLUTION\nlog2 8 = 3\n"
                "### END SOLUTION",
                metadata={"tags": ["solution"]},
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write(nb, path):
    nbformat.write(nb, path)
    return path


# --- the stub -------------------------------------------------------------


def test_stub_replaces_the_region_and_keeps_the_indent_of_its_marker():
    source = (
        "def f(x):\n"
        "    ### BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "z = 1"
    )
    expected = (
        "def f(x):\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "\n"
        "z = 1"
    )
    assert stub_solutions(source) == (expected, 1)


def test_stub_replaces_every_region_of_a_cell():
    source = (
        "### BEGIN SOLUTION\na = 1\n### END SOLUTION\n"
        "b = 2\n"
        "### BEGIN SOLUTION\nc = 3\n### END SOLUTION"
    )
    expected = (
        "# YOUR CODE HERE\nraise NotImplementedError()\n"
        "b = 2\n"
        "# YOUR CODE HERE\nraise NotImplementedError()"
    )
    assert stub_solutions(source) == (expected, 2)


def test_source_without_markers_is_left_alone():
    assert stub_solutions("x = 1\n# a comment\n") == (
        "x = 1\n# a comment\n",
        0,
    )


def test_an_end_marker_without_a_begin_is_an_error_naming_the_line():
    with pytest.raises(AssignmentError, match="line 2 .*without"):
        stub_solutions("x = 1\n### END SOLUTION", where="ch.ipynb, cell 4")


def test_a_region_never_closed_is_an_error_naming_where_it_opened():
    with pytest.raises(AssignmentError, match="cell 4: .*line 1 is never"):
        stub_solutions("### BEGIN SOLUTION\nx = 1", where="ch.ipynb, cell 4")


def test_a_region_opened_twice_is_an_error():
    source = "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"
    with pytest.raises(AssignmentError, match="line 2 opens .* line 1"):
        stub_solutions(source)


# --- the two versions of a notebook ------------------------------------


def test_student_version_replaces_exactly_the_solution_regions():
    nb = small_chapter()
    student = student_notebook(nb, "00_tiny.ipynb")
    sources = [c.source for c in student.cells]
    assert sources[5] == (
        "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )
    assert sources[8] == CODE_STUB
    assert sources[10] == "Derivation:\n" + TEXT_STUB
    # Everything else is the chapter's own text.
    for index in set(range(len(nb.cells))) - {5, 8, 10}:
        assert sources[index] == nb.cells[index].source
    # The input notebook is not changed.
    assert "return 2 * x" in nb.cells[5].source


def test_a_markdown_solution_without_markers_becomes_the_text_stub():
    nb = small_chapter()
    nb.cells[10].source = "The answer is three."
    assert student_notebook(nb).cells[10].source == TEXT_STUB


def test_student_stubs_and_checks_may_raise_and_stubs_are_not_hidden():
    student = student_notebook(small_chapter())
    for index in (5, 6, 8, 9):
        assert "raises-exception" in tags_of(student.cells[index])
    for index in (5, 8):
        assert "hide-cell" not in tags_of(student.cells[index])
        assert "solution" in tags_of(student.cells[index])
    assert "raises-exception" not in tags_of(student.cells[3])


def test_instructor_version_keeps_every_source_and_tag():
    nb = small_chapter()
    instructor = instructor_notebook(nb, "00_tiny.ipynb")
    assert [c.source for c in instructor.cells] == [c.source for c in nb.cells]
    assert [tags_of(c) for c in instructor.cells] == [
        tags_of(c) for c in nb.cells
    ]


@pytest.mark.parametrize("version", [student_notebook, instructor_notebook])
def test_both_versions_carry_nbgrader_metadata(version):
    out = version(small_chapter(), "00_tiny.ipynb", points=2)
    graded = {i: c.metadata.get("nbgrader") for i, c in enumerate(out.cells)}
    for index in (5, 8, 10):
        meta = graded[index]
        assert meta["solution"] is True and meta["grade"] is False
        assert meta["locked"] is False and meta["schema_version"] == 3
    for index in (6, 9):
        meta = graded[index]
        assert meta["grade"] is True and meta["solution"] is False
        assert meta["locked"] is True and meta["points"] == 2
    assert graded[3] is None and graded[1] is None
    ids = [m["grade_id"] for m in graded.values() if m]
    assert len(ids) == len(set(ids)) == 5
    assert all(i.replace("_", "").replace("-", "").isalnum() for i in ids)


def test_outputs_are_cleared_in_both_versions():
    nb = small_chapter()
    nb.cells[2].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="3\n")
    ]
    nb.cells[2].execution_count = 7
    for version in (student_notebook, instructor_notebook):
        cell = version(nb).cells[2]
        assert cell.outputs == [] and cell.execution_count is None


def test_a_solution_cell_without_markers_is_refused_naming_the_cell():
    nb = small_chapter()
    nb.cells[8].source = "answer = 3"
    with pytest.raises(AssignmentError, match=r"00_tiny.ipynb, cell 9 .*no"):
        student_notebook(nb, "00_tiny.ipynb")


def test_markers_in_a_cell_not_tagged_solution_are_refused():
    nb = small_chapter()
    nb.cells[2].source = "### BEGIN SOLUTION\nbase = 3\n### END SOLUTION"
    with pytest.raises(AssignmentError, match="cell 3 .*not tagged"):
        instructor_notebook(nb, "00_tiny.ipynb")


def test_mismatched_markers_in_a_chapter_name_notebook_and_cell():
    nb = small_chapter()
    nb.cells[5].source = "def double(x):\n    ### BEGIN SOLUTION\n    pass"
    with pytest.raises(AssignmentError, match="00_tiny.ipynb, cell 6"):
        student_notebook(nb, "00_tiny.ipynb")


# --- building folders -------------------------------------------------


def test_build_writes_student_and_instructor_folders(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    built = build(tmp_path / "out", [src])
    assert built.student == [tmp_path / "out" / "student" / "00_tiny.ipynb"]
    assert built.instructor == [
        tmp_path / "out" / "instructor" / "00_tiny.ipynb"
    ]
    assert (built.solutions, built.checks) == (3, 2)
    student = nbformat.read(built.student[0], as_version=4)
    assert student.cells[8].source == CODE_STUB
    nbformat.validate(student)


def test_build_refuses_to_overwrite_an_existing_folder(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    build(tmp_path / "out", [src])
    marker = tmp_path / "out" / "student" / "my_notes.txt"
    marker.write_text("keep me")
    with pytest.raises(ValueError, match="already exists.*--force"):
        build(tmp_path / "out", [src])
    assert marker.read_text() == "keep me"


def test_force_replaces_only_the_two_folders(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    build(tmp_path / "out", [src])
    (tmp_path / "out" / "student" / "stale.ipynb").write_text("{}")
    (tmp_path / "out" / "grades.csv").write_text("kept")
    build(tmp_path / "out", [src], force=True)
    assert not (tmp_path / "out" / "student" / "stale.ipynb").exists()
    assert (tmp_path / "out" / "grades.csv").read_text() == "kept"


def test_a_bad_notebook_leaves_nothing_half_written(tmp_path):
    good = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    broken = small_chapter()
    broken.cells[8].source = "### END SOLUTION"
    bad = write(broken, tmp_path / "01_broken.ipynb")
    with pytest.raises(AssignmentError, match="01_broken.ipynb, cell 9"):
        build(tmp_path / "out", [good, bad])
    assert not (tmp_path / "out").exists()


def test_build_refuses_paths_that_are_not_notebooks(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(ValueError, match="notebooks must be .ipynb"):
        build(tmp_path / "out", [text])
    with pytest.raises(ValueError, match="no .ipynb files"):
        build(tmp_path / "out", [tmp_path])
    with pytest.raises(ValueError, match="points must be"):
        build(tmp_path / "out", [text], points=-1)


def test_a_missing_notebook_is_named_as_missing(tmp_path):
    with pytest.raises(ValueError, match="no such file or folder"):
        build(tmp_path / "out", [tmp_path / "03_chunker.ipynb"])


def test_command_line_builds_then_refuses_a_second_time(tmp_path, capsys):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    argv = ["build", str(tmp_path / "out"), "--notebooks", str(src)]
    assert assignments.main(argv) == 0
    assert "3 solutions stubbed, 2 check cells" in capsys.readouterr().out
    assert assignments.main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert assignments.main([*argv, "--force"]) == 0


def test_command_line_runs_as_a_module(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    broken = small_chapter()
    broken.cells[5].source = "### BEGIN SOLUTION"
    bad = write(broken, tmp_path / "01_bad.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "distill_lessons.assignments", "build"]
        + [str(tmp_path / "out"), "--notebooks", str(src), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: 01_bad.ipynb, cell 6")


@pytest.mark.parametrize("kind", ["markdown", "raw"])
def test_markers_in_an_untagged_markdown_or_raw_cell_are_refused(kind):
    nb = small_chapter()
    cell = nbformat.v4.new_raw_cell if kind == "raw" else new_markdown_cell
    nb.cells[7] = cell("Hint:\n### BEGIN SOLUTION\nlog2 8\n### END SOLUTION")
    for version in (student_notebook, instructor_notebook):
        with pytest.raises(
            AssignmentError,
            match=f"00_tiny.ipynb, cell 8 \\({kind}\\) .*not tagged",
        ):
            version(nb, "00_tiny.ipynb")


def test_a_markdown_solution_loses_the_images_only_its_answer_used():
    nb = small_chapter()
    png = {"image/png": "iVBORw0KGgo="}
    nb.cells[10].source = (
        "![question](attachment:question.png)\n"
        "### BEGIN SOLUTION\n![answer](attachment:answer.png)\n"
        "### END SOLUTION"
    )
    nb.cells[10].attachments = {"question.png": png, "answer.png": png}
    student = student_notebook(nb, "00_tiny.ipynb")
    assert student.cells[10].source == (
        "![question](attachment:question.png)\n" + TEXT_STUB
    )
    assert dict(student.cells[10].attachments) == {"question.png": png}
    nbformat.validate(student)
    # a whole-cell answer keeps no image at all
    nb.cells[10].source = "![answer](attachment:answer.png)"
    nb.cells[10].attachments = {"answer.png": png}
    assert "attachments" not in student_notebook(nb).cells[10]
    # the instructor keeps them
    assert instructor_notebook(nb).cells[10].attachments == {"answer.png": png}


def test_tags_written_as_a_string_are_refused_as_not_a_list():
    nb = small_chapter()
    nb.cells[5].metadata["tags"] = "solution"
    with pytest.raises(
        AssignmentError, match="00_tiny.ipynb, cell 6: .*tags must be a list"
    ):
        student_notebook(nb, "00_tiny.ipynb")


def test_force_never_deletes_a_folder_when_a_file_sits_in_the_way(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    out = tmp_path / "out"
    (out / "student").mkdir(parents=True)
    (out / "student" / "mine.txt").write_text("keep me")
    (out / "instructor").write_text("a file")
    with pytest.raises(ValueError, match="instructor is a file, not a fol"):
        build(out, [src], force=True)
    assert (out / "student" / "mine.txt").read_text() == "keep me"
    assert (out / "instructor").read_text() == "a file"
    assert sorted(p.name for p in out.iterdir()) == ["instructor", "student"]


def test_force_never_replaces_a_symbolic_link(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "student").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="student is a symbolic link"):
        build(out, [src], force=True)
    assert (out / "student").is_symlink()
    assert (elsewhere / "mine.txt").read_text() == "keep me"


def test_an_outdir_that_is_a_file_is_refused(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    outfile = tmp_path / "out"
    outfile.write_text("a file")
    for outdir in (outfile, outfile / "below"):
        with pytest.raises(ValueError, match="outdir: .*out is a file"):
            build(outdir, [src])
    assert outfile.read_text() == "a file"


def test_a_failed_write_leaves_the_old_folders_as_they_were(
    tmp_path, monkeypatch
):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    out = tmp_path / "out"
    build(out, [src])
    (out / "student" / "mine.txt").write_text("keep me")
    before = (out / "instructor" / "00_tiny.ipynb").read_text()

    def full_disk(nb, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(assignments.nbformat, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        build(out, [src], force=True)
    assert (out / "student" / "mine.txt").read_text() == "keep me"
    assert (out / "instructor" / "00_tiny.ipynb").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["instructor", "student"]


def test_command_line_reports_a_file_in_the_way_as_an_error(tmp_path, capsys):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    out = tmp_path / "out"
    out.write_text("a file")
    argv = ["build", str(out), "--notebooks", str(src), "--force"]
    assert assignments.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: outdir: ")
    out.unlink()
    out.mkdir()
    (out / "student").write_text("a file")
    assert assignments.main(argv) == 2
    assert "student is a file" in capsys.readouterr().err


# --- executing generated notebooks ---------------------------------------


def run_cells(nb, cwd):
    """Execute ``nb`` in a fresh kernel, going on after errors.

    Returns, per cell, the name of the exception it raised or None.
    """
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    errors = []
    for cell in nb.cells:
        found = None
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found = (out.ename, out.evalue)
        errors.append(found)
    return errors


def test_small_chapter_checks_pass_for_instructor_and_fail_for_student(
    tmp_path,
):
    nb = small_chapter()
    instructor = run_cells(instructor_notebook(nb), tmp_path)
    student = run_cells(student_notebook(nb), tmp_path)
    assert instructor == [None] * len(nb.cells)
    assert student[5] is None  # defining the stubbed function is fine
    assert student[6][0] == "NotImplementedError"
    assert student[8][0] == "NotImplementedError"
    assert student[9][0] == "NameError"


def nbval(paths, cwd):
    """Run nbval, as the project's pytest settings do, in a subprocess."""
    (cwd / "pytest.ini").write_text(
        "[pytest]\naddopts = --nbval-lax --nbval-current-env\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-p", "no:xdist", *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_generated_small_notebooks_run_under_nbval(tmp_path):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    built = build(tmp_path / "out", [src])
    run = nbval(built.student + built.instructor, tmp_path / "out")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "passed" in run.stdout


def test_nbval_would_catch_a_student_stub_without_the_raises_tag(tmp_path):
    student = student_notebook(small_chapter())
    student.cells[8].metadata["tags"].remove("raises-exception")
    path = write(student, tmp_path / "00_tiny.ipynb")
    assert nbval([path], tmp_path).returncode != 0


# --- grading without nbgrader ---------------------------------------------


def test_grading_counts_checks_that_pass_in_each_notebook(tmp_path, capsys):
    src = write(small_chapter(), tmp_path / "00_tiny.ipynb")
    built = build(tmp_path / "out", [src])
    half = student_notebook(small_chapter())
    half.cells[5].source = "def double(x):\n    return x + x"
    handed_in = write(half, tmp_path / "alice.ipynb")
    grades = assignments.grade(
        [built.student[0], built.instructor[0], handed_in]
    )
    # Checks are cells 7 and 10 of the small chapter.
    assert [(g.passed, g.total, g.failed) for g in grades] == [
        (0, 2, [7, 10]),
        (2, 2, []),
        (1, 2, [10]),
    ]
    assert assignments.main(["grade", str(handed_in)]) == 0
    assert "| 1 of 2 | 10 |" in capsys.readouterr().out


def test_grading_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="no .ipynb files"):
        assignments.grade([tmp_path])
    with pytest.raises(ValueError, match="timeout must be"):
        assignments.grade([tmp_path], timeout=0)


# --- the real chapters ---------------------------------------------------


def _parse(source):
    # IPython magics and shell escapes are not Python; they define nothing.
    lines = [
        "pass" if line.lstrip().startswith(("%", "!")) else line
        for line in source.split("\n")
    ]
    return ast.parse("\n".join(lines))


def defined_and_used(source):
    """Top-level names a cell binds (or changes), and every name it reads."""
    tree = _parse(source)
    defined = set()

    def root(node):
        while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def visit_top(node):
        if isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            defined.add(node.name)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                defined.add((alias.asname or alias.name).split(".")[0])
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        if isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
            node.ctx, ast.Store
        ):
            name = root(node)
            if name:
                defined.add(name)
        if isinstance(
            node,
            ast.Lambda
            | ast.ListComp
            | ast.SetComp
            | ast.DictComp
            | ast.GeneratorExp,
        ):
            return  # their names are their own
        for child in ast.iter_child_nodes(node):
            visit_top(child)

    visit_top(tree)
    return defined, free_names(tree) - set(dir(builtins))


def free_names(tree):
    """Names a cell reads from the notebook's globals.

    Reads at the top level, and reads inside functions and classes of names
    they do not bind themselves (a function's parameters are its own).
    """
    table = symtable.symtable(ast.unparse(tree), "<cell>", "exec")
    found = set()

    def visit(scope, top):
        for symbol in scope.get_symbols():
            if not symbol.is_referenced():
                continue
            if top or symbol.is_global() or symbol.is_declared_global():
                found.add(symbol.get_name())
        for child in scope.get_children():
            visit(child, False)

    visit(table, True)
    return found


def cells_for_exercises(nb):
    """Indices of the code cells the exercises need, in notebook order.

    The solution and check cells, the set-up cell, and, walking backwards,
    every earlier cell that binds a name a needed cell reads.
    """
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    targets = {
        i
        for i in code_cells
        if {"solution", "exercise-check"} & set(tags_of(nb.cells[i]))
    }
    last = max(targets)
    needed_names = set()
    chosen = {code_cells[0]}
    for index in reversed([i for i in code_cells if i <= last]):
        defined, used = defined_and_used(nb.cells[index].source)
        if index in targets or defined & needed_names:
            chosen.add(index)
            needed_names |= used
    return sorted(chosen)


def test_cell_selection_follows_names_back_to_their_definitions():
    nb = small_chapter()
    nb.cells.insert(3, code("unrelated = [1, 2, 3]"))
    # Cells: 1 set-up, 2 base, 3 unrelated, 4 claims, 6-7 and 9-10 exercise.
    assert cells_for_exercises(nb) == [1, 2, 6, 7, 9, 10]


def solution_names(cell):
    """Names bound inside the solution regions of a cell."""
    inside, names = False, set()
    body = []
    for line in cell.source.split("\n"):
        if line.strip() == assignments.BEGIN:
            inside = True
        elif line.strip() == assignments.END:
            inside = False
        elif inside:
            body.append(line.strip())
    try:
        names = defined_and_used("\n".join(body))[0]
    except SyntaxError:
        pass
    # A stub inside a def leaves the function defined; a top-level stub
    # leaves the cell's own names unbound.
    return names | defined_and_used(cell.source)[0]


def exercise_plan(nb, chosen):
    """The cells to run, in order, each as (index, version, role).

    Cells outside the exercises run once, as written. Each exercise (its
    solution cells and the checks after them) runs twice in a row: first
    with the student's stubs, when every check must fail, then with the
    instructor's solutions, when every check must pass. Running both in one
    kernel costs one pass over the chapter, and tests each check with the
    earlier exercises solved, as a student meets it.
    """
    plan, group = [], []

    def flush():
        if group:
            plan.extend((i, "student", "exercise") for i in group)
            plan.extend((i, "instructor", "exercise") for i in group)
            group.clear()

    for index in chosen:
        tags = set(tags_of(nb.cells[index]))
        if "solution" in tags:
            if group and "exercise-check" in tags_of(nb.cells[group[-1]]):
                flush()
            group.append(index)
        elif "exercise-check" in tags and group:
            group.append(index)
        else:
            flush()
            plan.append((index, "instructor", "setup"))
    flush()
    return plan


def run_plan(nb, plan, cwd):
    versions = {
        "student": student_notebook(nb),
        "instructor": instructor_notebook(nb),
    }
    cells = []
    for k, (i, version, _) in enumerate(plan):
        cell = copy.deepcopy(versions[version].cells[i])
        cell["id"] = f"plan-{k}"  # a cell may run twice; ids stay unique
        cells.append(cell)
    return run_cells(new_notebook(cells=cells, metadata=nb.metadata), cwd)


def test_exercise_plan_runs_each_exercise_as_student_then_instructor():
    nb = small_chapter()
    plan = exercise_plan(nb, cells_for_exercises(nb))
    assert plan == [
        (1, "instructor", "setup"),
        (2, "instructor", "setup"),
        (5, "student", "exercise"),
        (6, "student", "exercise"),
        (5, "instructor", "exercise"),
        (6, "instructor", "exercise"),
        (8, "student", "exercise"),
        (9, "student", "exercise"),
        (8, "instructor", "exercise"),
        (9, "instructor", "exercise"),
    ]


@pytest.mark.skipif(not CHAPTERS, reason="no chapters in notebooks/ yet")
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_check_passes_for_the_instructor_and_fails_on_the_stubs(
    path, tmp_path
):
    nb = nbformat.read(path, as_version=4)
    chosen = cells_for_exercises(nb)
    code_cells = sum(c.cell_type == "code" for c in nb.cells)
    if QUICK and len(chosen) > code_cells / 2:
        pytest.skip(
            f"{path.name}: its exercises need {len(chosen)} of its "
            f"{code_cells} code cells (DISTILL_LESSONS_QUICK=1)"
        )
    plan = exercise_plan(nb, chosen)
    errors = run_plan(nb, plan, path.parent)

    def instructor_failures():
        return [
            (plan[k][0] + 1, err)
            for k, err in enumerate(errors)
            if err and plan[k][1] == "instructor"
        ]

    if instructor_failures():
        # The name analysis missed an effect (a cell that changes an object
        # in place, say): fall back to every cell up to the last exercise.
        warnings.warn(
            f"{path.name}: the chosen cells were not enough "
            f"({instructor_failures()}); running every cell instead",
            stacklevel=1,
        )
        chosen = [
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and i <= chosen[-1]
        ]
        plan = exercise_plan(nb, chosen)
        errors = run_plan(nb, plan, path.parent)
    failed = instructor_failures()
    assert not failed, f"{path.name}: the instructor version fails {failed}"

    stub_names = set()
    for i in chosen:
        if "solution" in tags_of(nb.cells[i]):
            stub_names |= solution_names(nb.cells[i])
    for (index, version, _), error in zip(plan, errors, strict=True):
        cell = nb.cells[index]
        if version != "student" or "exercise-check" not in tags_of(cell):
            continue
        assert error is not None, (
            f"{path.name}, cell {index + 1}: the check passes while its "
            "solution is a stub, so it checks nothing"
        )
        name, value = error
        # The student and instructor runs of an exercise differ only in the
        # stubs, so the check fails because of them: directly
        # (NotImplementedError), through an answer left unbound
        # (NameError), or through a wrong value.
        if name == "NameError":
            missing = value.split("'")[1] if "'" in value else value
            assert missing in stub_names, (
                f"{path.name}, cell {index + 1}: NameError for {missing!r}, "
                "which no solution defines"
            )


@pytest.mark.skipif(
    not FULL, reason="runs every chapter twice; set DISTILL_LESSONS_FULL=1"
)
@pytest.mark.skipif(not CHAPTERS, reason="no chapters in notebooks/ yet")
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_generated_chapters_run_under_nbval(path, tmp_path):
    built = build(tmp_path / "out", [path])
    run = nbval(built.student + built.instructor, tmp_path / "out")
    assert run.returncode == 0, run.stdout[-3000:]


def test_committed_chapters_are_valid_input_for_the_builder(tmp_path):
    if not CHAPTERS:
        pytest.skip("no chapters in notebooks/ yet")
    built = build(tmp_path / "out", CHAPTERS)
    assert len(built.student) == len(CHAPTERS)
    for path in built.student:
        data = json.loads(path.read_text())
        text = json.dumps(data)
        assert "### BEGIN SOLUTION" not in text, path.name


# --- the student build of the book ---------------------------------------


def load_student_build():
    import importlib.util

    path = ROOT / "book" / "_ext" / "student_build.py"
    spec = importlib.util.spec_from_file_location("student_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeEnv:
    def doc2path(self, docname):
        return ROOT / f"{docname}.ipynb"


class FakeApp:
    env = FakeEnv()


def test_student_book_build_removes_solution_cells_but_still_runs_them(
    monkeypatch,
):
    ext = load_student_build()
    source = [nbformat.writes(small_chapter())]
    monkeypatch.setenv("DISTILL_LESSONS_STUDENT_BOOK", "1")
    ext.drop_solutions(FakeApp(), "notebooks/00_tiny", source)
    cells = json.loads(source[0])["cells"]
    assert cells[5]["metadata"]["tags"] == ["solution", "remove-cell"]
    assert cells[10]["metadata"]["tags"] == ["solution", "remove-cell"]
    # The code is still there, so the book's execution still runs it.
    assert "return 2 * x" in "".join(cells[5]["source"])
    assert cells[6]["metadata"]["tags"] == ["exercise-check"]


def test_normal_book_build_leaves_notebooks_alone(monkeypatch):
    ext = load_student_build()
    text = nbformat.writes(small_chapter())
    source = [text]
    monkeypatch.delenv("DISTILL_LESSONS_STUDENT_BOOK", raising=False)
    ext.drop_solutions(FakeApp(), "notebooks/00_tiny", source)
    assert source == [text]
