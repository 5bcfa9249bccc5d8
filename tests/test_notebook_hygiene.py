"""Every chapter is committed clean and follows the book's conventions."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
TOC = (Path(__file__).parents[1] / "_toc.yml").read_text()


def cells(path, kind=None):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if kind is None or c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"])


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for cell in cells(path, "code"):
        assert cell.get("outputs", []) == [], f"{path.name} has outputs"
        assert cell.get("execution_count") is None, (
            f"{path.name} has execution counts"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_python3_kernel(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_name_carries_the_reading_order(path):
    number, _, topic = path.stem.partition("_")
    assert number.isdigit() and len(number) == 2 and topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    assert f"notebooks/{path.stem}" in TOC


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_header_summary_exercises_and_references(path):
    text = "\n".join(source(c) for c in cells(path, "markdown"))
    for needed in (
        "What you will learn",
        "Prerequisites",
        "CPU time",
        "## Summary",
        "## Exercises",
        "## References",
        "{cite}",
    ):
        assert needed in text, f"{path.name} lacks {needed!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_sets_one_thread_in_its_first_code_cell(path):
    first = source(cells(path, "code")[0])
    assert "torch.set_num_threads(1)" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_claims_are_asserted_in_cells_the_book_hides(path):
    checks = [c for c in cells(path, "code") if "check-claims" in tags(c)]
    assert checks, f"{path.name} has no check-claims cell"
    for cell in checks:
        assert "remove-cell" in tags(cell)
        assert "assert" in source(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_solutions_and_a_check(path):
    code = cells(path, "code")
    solutions = [c for c in code if "solution" in tags(c)]
    assert solutions, f"{path.name} has no solution cells"
    for cell in solutions:
        text = source(cell)
        assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text
    assert any("exercise-check" in tags(c) for c in code)
