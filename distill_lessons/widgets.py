"""Interactive explorations for JupyterLab, each with a static twin.

Chapter 1 introduces :func:`surprise_explorer`. The rendered HTML book cannot
run widget callbacks, so every chapter that shows a widget also draws the
same information as an ordinary figure (here :func:`plot_surprise_heatmap`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from distill_lessons.plots import COLORS

__all__ = ["plot_surprise_trace", "plot_surprise_heatmap", "surprise_explorer"]


def _check_trace(name: str, bits: object, symbols: object) -> None:
    if not isinstance(bits, torch.Tensor) or bits.dim() != 1:
        raise ValueError(
            f"{name} must be a 1-d tensor of surprise in bits, (time,), got "
            f"{getattr(bits, 'shape', type(bits).__name__)}"
        )
    if len(symbols) != len(bits):
        raise ValueError(
            f"symbols must hold one label per time step ({len(bits)}), "
            f"got {len(symbols)}"
        )


def _check_traces(traces: dict[int, torch.Tensor], symbols) -> list[int]:
    if not isinstance(traces, dict) or not traces:
        raise ValueError("traces must map training steps to surprise traces")
    for step, bits in traces.items():
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(
                f"traces must be keyed by training steps (ints), got {step!r}"
            )
        _check_trace(f"traces[{step}]", bits, symbols)
    return sorted(traces)


def plot_surprise_trace(
    ax, bits: torch.Tensor, symbols: list[str], *, marks=None, title=""
):
    """Bar chart of surprise (bits) per time step, symbols on the x axis.

    ``bits``: ``(time,)``. ``marks``: optional bool ``(time,)``; marked steps
    (for example the first symbol of each chunk) are drawn in the surprise
    colour, the others in grey.
    """
    _check_trace("bits", bits, symbols)
    if marks is not None and len(marks) != len(bits):
        raise ValueError(
            f"marks must hold one flag per time step ({len(bits)}), "
            f"got {len(marks)}"
        )
    steps = range(len(bits))
    colors = [
        COLORS["surprise"] if marks is not None and bool(marks[i]) else "0.6"
        for i in steps
    ]
    ax.bar(steps, bits.tolist(), color=colors, width=0.8)
    ax.set_xticks(list(steps))
    ax.set_xticklabels(symbols, fontsize=7)
    ax.set_xlabel("symbol that came (time runs left to right)")
    ax.set_ylabel("surprise (bits)")
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    return ax


def plot_surprise_heatmap(
    ax, traces: dict[int, torch.Tensor], symbols: list[str]
):
    """Heat map of surprise: one row per training step, one column per symbol.

    ``traces`` maps a number of training steps to a surprise trace
    ``(time,)`` in bits, all of the same length.
    """
    steps = _check_traces(traces, symbols)
    grid = torch.stack([traces[s] for s in steps])  # (checkpoints, time)
    image = ax.imshow(grid, aspect="auto", cmap="Oranges", vmin=0)
    ax.set_yticks(range(len(steps)))
    ax.set_yticklabels([str(s) for s in steps])
    ax.set_xticks(range(len(symbols)))
    ax.set_xticklabels(symbols, fontsize=7)
    ax.set_ylabel("training steps")
    ax.set_xlabel("symbol that came (time runs left to right)")
    ax.grid(False)
    plt.colorbar(image, ax=ax, label="surprise (bits)")
    return ax


def surprise_explorer(
    traces: dict[int, torch.Tensor], symbols: list[str], *, marks=None
):
    """A slider over training steps that redraws the surprise trace.

    Returns an ipywidgets ``VBox`` holding the slider and the figure. The
    traces are computed beforehand, so moving the slider costs no training.
    """
    import ipywidgets as widgets

    steps = _check_traces(traces, symbols)
    if marks is not None and len(marks) != len(symbols):
        raise ValueError(
            f"marks must hold one flag per time step ({len(symbols)}), "
            f"got {len(marks)}"
        )
    values = torch.cat([v.detach().float() for v in traces.values()])
    if values.numel() == 0 or not bool(values.isfinite().all()):
        raise ValueError(
            "traces must hold at least one time step and only finite "
            "surprise values (no NaN or inf)"
        )
    vmax = max(float(values.max()) * 1.05, 1e-6)
    slider = widgets.SelectionSlider(
        options=steps,
        value=steps[0],
        description="steps",
        continuous_update=True,
        layout=widgets.Layout(width="60%"),
    )
    out = widgets.Output()

    def draw(change=None):
        step = slider.value
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(8, 2.8))
            plot_surprise_trace(
                ax,
                traces[step],
                symbols,
                marks=marks,
                title=f"surprise after {step} training steps, "
                f"mean {float(traces[step].mean()):.2f} bits per symbol",
            )
            ax.set_ylim(0, vmax)
            plt.show()

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])
