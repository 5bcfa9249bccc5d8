"""Sphinx extension: a student build of the book, without the solutions.

Loaded by ``_config.yml`` for every build, it does nothing unless the
environment variable ``DISTILL_LESSONS_STUDENT_BOOK`` is ``1``. Then every
notebook cell tagged ``solution`` is re-tagged ``remove-cell`` before
myst-nb reads the notebook: the cell still runs, so the exercise checks
after it pass, but neither its code nor its output reaches the page. The
page for instructors (book/instructors.md) gives the command.
"""

from __future__ import annotations

import json
import os

SHOWN_ON_DEMAND = {"hide-cell", "hide-input", "hide-output"}


def student_build() -> bool:
    return os.environ.get("DISTILL_LESSONS_STUDENT_BOOK", "") == "1"


def drop_solutions(app, docname: str, source: list[str]) -> None:
    """Turn the solution cells of one notebook into removed cells."""
    if not student_build():
        return
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    nb = json.loads(source[0])
    for cell in nb.get("cells", []):
        meta = cell.setdefault("metadata", {})
        tags = meta.get("tags", [])
        if "solution" in tags:
            kept = [t for t in tags if t not in SHOWN_ON_DEMAND]
            meta["tags"] = [*kept, "remove-cell"]
    source[0] = json.dumps(nb)


def setup(app):
    app.connect("source-read", drop_solutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
