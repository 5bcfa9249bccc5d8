"""Figure helpers the chapters share, so every figure looks the same.

Chapter 1 introduces :func:`book_style`. Figures are plain matplotlib: the
helpers set sizes and labels, and return the axes for the chapter to finish.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["book_style", "COLORS"]

COLORS = {
    "teacher": "#1b6ca8",
    "student": "#d1495b",
    "scratch": "#8d8d8d",
    "distilled": "#2e933c",
    "chunker": "#1b6ca8",
    "automatiser": "#d1495b",
    "surprise": "#e07a1f",
}
"""One colour per role, used the same way in every chapter."""


def book_style() -> None:
    """Set the book's matplotlib defaults (size, grid, fonts, SVG-sharp)."""
    plt.rcParams.update(
        {
            "figure.figsize": (7.5, 3.2),
            "figure.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
        }
    )
