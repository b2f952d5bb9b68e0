"""The replay's regret curves drawn: one PNG per task (validation regret, a panel per worker
count), and one across tasks per split (mean normalised test regret)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nonbinary_ft.replay.metrics import BUDGETS, RegretCurve

__all__ = ["regret_figure", "across_tasks_figure", "write_regret_plots"]


def _styles(strategies: Sequence[str]) -> dict[str, dict]:
    """A colour per strategy (20 distinct ones: the default cycle's 10 would repeat), its
    held-out variants ('nbft/loso') dashed in the same colour."""
    bases = sorted({strategy.split("/")[0] for strategy in strategies})
    palette = colormaps["tab20"]
    return {
        strategy: {
            "color": palette(bases.index(strategy.split("/")[0]) % palette.N),
            "linestyle": "--" if "/" in strategy else "-",
        }
        for strategy in strategies
    }


def regret_figure(curves: Sequence[RegretCurve]) -> Figure:
    """Regret against compute for one task: the median and interquartile band per strategy."""
    workers = sorted({curve.workers for curve in curves})
    styles = _styles([curve.strategy for curve in curves])
    figure = Figure(figsize=(5.5 * len(workers) + 1.8, 4.2), dpi=100)
    for index, count in enumerate(workers, start=1):
        ax = figure.add_subplot(1, len(workers), index)
        for curve in (c for c in curves if c.workers == count):
            style = styles[curve.strategy]
            ax.plot(curve.fractions, curve.median, label=curve.strategy, **style)
            ax.fill_between(curve.fractions, curve.q25, curve.q75, alpha=0.1, color=style["color"])
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("compute (fraction of the whole grid's)")
        ax.set_ylabel("regret (validation accuracy points)")
        ax.set_title(f"{curves[0].task}, {count} worker{'s' if count > 1 else ''}")
        ax.grid(True, which="major", alpha=0.3)
    _legend_outside(figure)
    return figure


def across_tasks_figure(curves: Sequence[RegretCurve], split: str) -> Figure:
    """Mean normalised test regret over the split's tasks against compute, a panel per worker
    count; the budgets where the summary reads it are marked."""
    workers = sorted({curve.workers for curve in curves})
    styles = _styles([curve.strategy for curve in curves])
    figure = Figure(figsize=(5.5 * len(workers) + 1.8, 4.2), dpi=100)
    for index, count in enumerate(workers, start=1):
        ax = figure.add_subplot(1, len(workers), index)
        mine = [c for c in curves if c.workers == count]
        for strategy in sorted({c.strategy for c in mine}):
            rows = [c.normalised for c in mine if c.strategy == strategy]
            ax.plot(mine[0].fractions, np.mean(rows, axis=0), label=strategy, **styles[strategy])
        for budget in BUDGETS:
            ax.axvline(budget, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("compute (fraction of the whole grid's)")
        ax.set_ylabel("normalised test regret of the incumbent")
        tasks = len({c.task for c in mine})
        ax.set_title(f"{split or 'all'} tables ({tasks}), {count} worker{'s' if count > 1 else ''}")
        ax.grid(True, which="major", alpha=0.3)
    _legend_outside(figure)
    return figure


def _legend_outside(figure: Figure) -> None:
    """One legend, right of the last panel, where it hides no curve."""
    figure.axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()


def write_regret_plots(curves: Sequence[RegretCurve], out: str | Path) -> list[Path]:
    """One ``regret-<task>.png`` per task and one ``regret-<split>.png`` across each split's
    tasks in ``out``; returns the files."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task in sorted({curve.task for curve in curves}):
        figure = regret_figure([curve for curve in curves if curve.task == task])
        path = folder / f"regret-{task}.png"
        FigureCanvasAgg(figure).print_png(str(path))
        written.append(path)
    for split in sorted({curve.split for curve in curves}):
        figure = across_tasks_figure([c for c in curves if c.split == split], split)
        path = folder / f"regret-across-{split or 'all'}.png"
        FigureCanvasAgg(figure).print_png(str(path))
        written.append(path)
    return written
