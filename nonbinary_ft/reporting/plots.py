"""Renderers: chart records (:mod:`nonbinary_ft.reporting.figures`) to matplotlib figures and PNG.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never through
``pyplot``: no global backend is switched and no figure is left open in a long-running sweep
driver or a user's notebook.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nonbinary_ft.reporting.figures import (
    BarChart,
    FigureRecord,
    ImportanceChart,
    LineChart,
    NoData,
    ProgressChart,
)

__all__ = ["DPI", "draw", "to_png", "render_png"]

DPI = 100
SIZE = (7.5, 4.2)
STATUS_STYLE = {
    "completed": {"marker": "o", "color": "tab:blue", "label": "completed"},
    "pruned": {"marker": "x", "color": "tab:red", "label": "pruned"},
    "early_stopped": {"marker": "v", "color": "tab:orange", "label": "stopped early"},
    "stopped": {"marker": "v", "color": "tab:brown", "label": "stopped (time budget)"},
    "diverged": {"marker": "^", "color": "tab:purple", "label": "diverged"},
    "error": {"marker": "s", "color": "tab:gray", "label": "error"},
}


def _line(figure: Figure, chart: LineChart) -> None:
    ax = figure.add_subplot()
    for series in chart.series:
        ax.plot(series.x, series.y, marker="o", label=series.label)
    for label, value in chart.references:
        ax.axhline(value, linestyle="--", color="0.4", label=label)
    if chart.log_x:
        ax.set_xscale("log")
    if chart.x_ticks:
        ax.set_xticks([x for x, _ in chart.x_ticks], [label for _, label in chart.x_ticks])
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _bars(figure: Figure, chart: BarChart) -> None:
    ax = figure.add_subplot()
    positions = list(range(len(chart.labels)))
    bars = ax.bar(positions, chart.means, yerr=chart.errors, capsize=6, color="tab:blue")
    ax.bar_label(bars, labels=[f"{m:.2f}" for m in chart.means], label_type="center", color="w")
    shown = [(p, e) for p, e in zip(positions, chart.ensembles, strict=True) if e is not None]
    if shown:
        ax.scatter(
            *zip(*shown, strict=True), marker="D", color="tab:orange", zorder=3, label="ensemble"
        )
        ax.legend(fontsize=8)
    # Accuracies of good settings differ by a point or two: start the axis near the data.
    low = min(
        [m - e for m, e in zip(chart.means, chart.errors, strict=True)] + [e for _, e in shown]
    )
    ax.set_ylim(max(0.0, low - 5.0), None)
    ax.set_xticks(positions, chart.labels)
    ax.set_ylabel(chart.y_label)
    ax.grid(axis="y", alpha=0.3)


def _progress(figure: Figure, chart: ProgressChart) -> None:
    ax = figure.add_subplot()
    if chart.best_x:
        ax.step(chart.best_x, chart.best_y, where="post", color="k", label="best so far")
    for status, style in STATUS_STYLE.items():
        points = [p for p in chart.points if p.status == status]
        if points:
            ax.scatter([p.x for p in points], [p.y for p in points], **style, zorder=3)
    for x, label in chart.regions:
        ax.axvline(x, linestyle=":", color="tab:red")
        ax.annotate(
            label,
            (x, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            color="tab:red",
            va="bottom",
            ha="right",
        )
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _importance(figure: Figure, chart: ImportanceChart) -> None:
    ax = figure.add_subplot()
    # Largest on top: barh draws the first name at the bottom.
    ax.barh(list(reversed(chart.names)), list(reversed(chart.values)), color="tab:green")
    ax.set_xlabel(f"importance, {chart.method}, {chart.num_trials} completed trials")
    ax.set_xlim(0, max(1.0, max(chart.values)))
    ax.grid(axis="x", alpha=0.3)


def draw(record: FigureRecord) -> Figure | None:
    """The matplotlib figure for ``record``, or None when it holds :class:`NoData`."""
    data = record.data
    if isinstance(data, NoData):
        return None
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    if isinstance(data, LineChart):
        _line(figure, data)
    elif isinstance(data, BarChart):
        _bars(figure, data)
    elif isinstance(data, ProgressChart):
        _progress(figure, data)
    elif isinstance(data, ImportanceChart):
        _importance(figure, data)
    else:  # pragma: no cover - a new chart type without a renderer is a programming error
        raise TypeError(f"no renderer for {type(data).__name__}")
    figure.axes[0].set_title(record.title, fontsize=10)
    return figure


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def render_png(record: FigureRecord) -> bytes | None:
    """``record`` drawn as PNG bytes, or None when it holds :class:`NoData`."""
    figure = draw(record)
    return None if figure is None else to_png(figure)
