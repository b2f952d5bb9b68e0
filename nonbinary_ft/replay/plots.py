"""The replay's regret curves drawn: one PNG per task, a panel per worker count."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nonbinary_ft.replay.benchmark import TARGET_POINTS, RegretCurve

__all__ = ["regret_figure", "write_regret_plots"]


def regret_figure(curves: Sequence[RegretCurve]) -> Figure:
    """Regret against compute for one task: the median and interquartile band per strategy."""
    workers = sorted({curve.workers for curve in curves})
    figure = Figure(figsize=(5.5 * len(workers), 4.2), dpi=100)
    for index, count in enumerate(workers, start=1):
        ax = figure.add_subplot(1, len(workers), index)
        for curve in (c for c in curves if c.workers == count):
            (line,) = ax.plot(curve.fractions, curve.median, label=curve.strategy)
            ax.fill_between(
                curve.fractions, curve.q25, curve.q75, alpha=0.15, color=line.get_color()
            )
        ax.axhline(TARGET_POINTS, color="black", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("compute (fraction of the whole grid's)")
        ax.set_ylabel("regret (validation accuracy points)")
        ax.set_title(f"{curves[0].task}, {count} worker{'s' if count > 1 else ''}")
        ax.grid(True, which="major", alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def write_regret_plots(curves: Sequence[RegretCurve], out: str | Path) -> list[Path]:
    """One ``regret-<task>.png`` per task in ``out``; returns the files."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in sorted({curve.task for curve in curves}):
        figure = regret_figure([curve for curve in curves if curve.task == task])
        path = folder / f"regret-{task}.png"
        FigureCanvasAgg(figure).print_png(str(path))
        written.append(path)
    return written
