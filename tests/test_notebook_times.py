"""tools/notebook_times.py: timing chapters and writing the status page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    path = ROOT / "tools" / "notebook_times.py"
    spec = importlib.util.spec_from_file_location("notebook_times", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_minutes_are_written_as_minutes_and_seconds():
    tool = load_tool()
    assert tool.minutes(0.0) == "0 min 00.0 s"
    assert tool.minutes(61.25) == "1 min 01.2 s"
    assert tool.minutes(600.0) == "10 min 00.0 s"


def test_table_has_a_row_per_chapter_and_a_total():
    tool = load_tool()
    rows = [
        {
            "path": Path("notebooks/01_a.ipynb"),
            "title": "1. A",
            "wall": 30.0,
            "cpu": 20.0,
            "error": "",
        },
        {
            "path": Path("notebooks/02_b.ipynb"),
            "title": "2. B",
            "wall": 90.0,
            "cpu": 70.0,
            "error": "ValueError: x",
        },
    ]
    lines = tool.table(rows).splitlines()
    assert lines[2] == (
        "| [1. A](../notebooks/01_a.ipynb) | 0 min 30.0 s | 0 min 20.0 s "
        "| yes |"
    )
    assert lines[3].endswith("| no: ValueError: x |")
    # 30 + 90 s of wall time, 20 + 70 s of CPU time
    assert (
        lines[4]
        == "| **all chapters** | **2 min 00.0 s** | **1 min 30.0 s** | |"
    )


def test_status_page_changes_only_between_its_markers(tmp_path, monkeypatch):
    tool = load_tool()
    page = tmp_path / "status.md"
    page.write_text(
        f"# Status\n\nbefore\n{tool.START}\nold table\n{tool.END}\nafter\n"
    )
    monkeypatch.setattr(tool, "STATUS", page)
    tool.write_status("new table")
    assert page.read_text() == (
        f"# Status\n\nbefore\n{tool.START}\nnew table\n{tool.END}\nafter\n"
    )


def test_the_committed_status_page_has_the_markers():
    tool = load_tool()
    text = (ROOT / "book" / "status.md").read_text()
    assert tool.START in text and tool.END in text
    assert text.index(tool.START) < text.index(tool.END)


def test_a_notebook_is_timed_with_its_kernel_cpu_time(tmp_path):
    tool = load_tool()
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 9. Busy work"),
            # About half a second of pure CPU in the kernel process.
            new_code_cell(
                "import time\nt = time.process_time()\n"
                "while time.process_time() - t < 0.5:\n    pass"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "09_busy.ipynb"
    nbformat.write(nb, path)
    row = tool.time_notebook(path, timeout=120)
    assert row["title"] == "9. Busy work" and row["error"] == ""
    assert row["cpu"] >= 0.5
    assert row["wall"] >= 0.5


def test_a_failing_notebook_is_reported_not_raised(tmp_path):
    tool = load_tool()
    nb = new_notebook(cells=[new_code_cell("raise ValueError('planted')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = tmp_path / "09_fails.ipynb"
    nbformat.write(nb, path)
    row = tool.time_notebook(path, timeout=120)
    assert "ValueError" in row["error"]
