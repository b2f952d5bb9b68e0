"""Strategies replayed on tables with many seeds, and what the field measures of them.

The figure of merit is the compute (seconds of training, the analysis included) until the
best validation accuracy found is within :data:`TARGET_POINTS` points of the table's best,
and the regret curve against compute. Pure functions compute small records; plotting them is
:mod:`nonbinary_ft.replay.plots`'s job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nonbinary_ft.analysis.recommend import row_answers
from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.replay.simulate import Trace, regret_at, replay
from nonbinary_ft.replay.strategies import ReplayTask, make_setup
from nonbinary_ft.replay.table import TaskTable, read_table

__all__ = [
    "TARGET_POINTS",
    "DEFAULT_BUDGET",
    "curve_fractions",
    "ResultRow",
    "RegretCurve",
    "ScienceRow",
    "compute_to_target",
    "budgets_worse",
    "summarise",
    "regret_curve",
    "science_row",
    "run_group",
    "history_for",
    "run_benchmark",
]

TARGET_POINTS = 0.3
DEFAULT_BUDGET = 0.5
"""Each replay's budget, as a share of the whole grid's compute: five times the 10 % that
the search is asked to reach the grid's best in. Past it the regret curves stay flat."""


def curve_fractions(budget_fraction: float) -> np.ndarray:
    """Where the regret curves are read: from 0.1 % of the grid's compute to the budget."""
    return np.logspace(-3, np.log10(budget_fraction), 61)


@dataclass(frozen=True)
class ResultRow:
    """One strategy on one task at one worker count, over its seeds.

    Compute is in seconds; ``None`` where the median seed never reached the target.
    """

    task: str
    strategy: str
    workers: int
    seeds: int
    grid_compute: float
    median_compute_to_target: float | None
    median_fraction_to_target: float | None
    reached: int
    median_final_regret: float
    median_final_test: float | None
    best_point_test: float
    median_trials: float


@dataclass(frozen=True)
class RegretCurve:
    """Regret (points) against compute (fraction of the grid's): median and quartiles."""

    task: str
    strategy: str
    workers: int
    fractions: tuple[float, ...]
    median: tuple[float, ...]
    q25: tuple[float, ...]
    q75: tuple[float, ...]


@dataclass(frozen=True)
class ScienceRow:
    """The regime the evidence predicts against the table's best point on table 7's rows."""

    task: str
    regime: str
    gap: float | None
    fisher: float | None
    best_settings: dict
    best_val: float
    agrees: dict[str, bool | None]


def compute_to_target(trace: Trace, best_val: float) -> float | None:
    """The compute when the incumbent first came within the target of ``best_val``."""
    target = best_val - TARGET_POINTS / 100 - 1e-12
    for compute, value in zip(trace.compute_s, trace.incumbent_val, strict=True):
        if value >= target:
            return compute
    return None


def _median_or_none(values: Sequence[float | None]) -> float | None:
    """The median, where a missing value counts as infinite (never reached)."""
    finite = sorted(math.inf if v is None else v for v in values)
    median = float(np.median(finite)) if finite else math.inf
    return None if math.isinf(median) else median


def summarise(table: TaskTable, strategy: str, workers: int, traces: Sequence[Trace]) -> ResultRow:
    """The row of the benchmark's output for one group of seeds."""
    reached = [compute_to_target(trace, table.best_val) for trace in traces]
    final_val = [trace.incumbent_val[-1] if trace.incumbent_val else 0.0 for trace in traces]
    final_test = [trace.incumbent_test[-1] for trace in traces if trace.incumbent_test]
    median = _median_or_none(reached)
    best_point = int(np.nanargmax(table.final_val))
    return ResultRow(
        task=table.task,
        strategy=strategy,
        workers=workers,
        seeds=len(traces),
        grid_compute=table.grid_compute_s,
        median_compute_to_target=median,
        median_fraction_to_target=None if median is None else median / table.grid_compute_s,
        reached=sum(value is not None for value in reached),
        median_final_regret=float(np.median([100 * (table.best_val - v) for v in final_val])),
        median_final_test=float(np.median(final_test)) if final_test else None,
        best_point_test=float(table.test[best_point, -1]),
        median_trials=float(np.median([trace.trials for trace in traces])),
    )


def regret_curve(
    table: TaskTable,
    strategy: str,
    workers: int,
    traces: Sequence[Trace],
    budget_fraction: float = DEFAULT_BUDGET,
) -> RegretCurve:
    """Median and interquartile regret against compute, up to the budget.

    Before a seed's first completed trial its regret is the whole best accuracy.
    """
    fractions = curve_fractions(budget_fraction)
    grid = fractions * table.grid_compute_s
    regrets = np.stack([regret_at(trace, table.best_val, grid) for trace in traces])
    regrets = np.where(np.isnan(regrets), 100 * table.best_val, regrets)
    q25, median, q75 = np.percentile(regrets, [25, 50, 75], axis=0)
    return RegretCurve(
        table.task,
        strategy,
        workers,
        tuple(fractions.tolist()),
        tuple(median.tolist()),
        tuple(q25.tolist()),
        tuple(q75.tolist()),
    )


def budgets_worse(curve: RegretCurve, reference: RegretCurve) -> list[float]:
    """The budgets (shares of the grid's compute) where ``curve``'s median regret is worse
    than ``reference``'s by more than the seeds' spread (the larger interquartile range)."""
    worse = []
    for i, fraction in enumerate(curve.fractions):
        spread = max(curve.q75[i] - curve.q25[i], reference.q75[i] - reference.q25[i])
        if curve.median[i] > reference.median[i] + spread + 1e-9:
            worse.append(fraction)
    return worse


def science_row(table: TaskTable) -> ScienceRow:
    """Does the evidence's regime predict the table's best point on table 7's rows?

    The learning-rate row reads 'low' below the median of the grid's learning rates; the
    regime predicts low for ``fits_well`` and high for ``fits_poorly``.
    """
    best = int(np.nanargmax(table.final_val))
    settings = dict(table.points[best])
    document = table.evidence.document if table.evidence else {}
    regime = (document.get("regime") or {}).get("label", "unknown")
    recommended = (document.get("recommendation") or {}).get("settings")
    agrees: dict[str, bool | None] = {}
    lrs = sorted({point["lr_high"] for point in table.points})
    low_lr = settings["lr_high"] < float(np.median(lrs))
    agrees["lr_high"] = {"fits_well": low_lr, "fits_poorly": not low_lr}.get(regime)
    if recommended and regime in ("fits_well", "fits_poorly"):
        ours = row_answers(TrialSettings.model_validate(settings))
        theirs = row_answers(TrialSettings.model_validate(recommended))
        agrees.update({row: ours[row] == theirs[row] for row in ours})
    table1 = document.get("table1") or {}
    return ScienceRow(
        task=table.task,
        regime=regime,
        gap=table1.get("gap"),
        fisher=table1.get("fisher"),
        best_settings=settings,
        best_val=table.best_val,
        agrees=agrees,
    )


@functools.lru_cache(maxsize=16)
def _task(folder: str) -> ReplayTask:
    return ReplayTask.from_table(read_table(folder))


def run_group(
    folder: str,
    strategy: str,
    workers: int,
    seeds: Sequence[int],
    budget_fraction: float = DEFAULT_BUDGET,
    history: Sequence[str] = (),
) -> tuple[ResultRow, RegretCurve]:
    """Replay one strategy on one table with every seed (one unit of parallel work).

    Args:
        folder: the table's folder.
        strategy: the strategy's name.
        workers: trials at once.
        seeds: the search seeds.
        budget_fraction: each replay stops after this share of the grid's compute.
        history: folders of the tables the strategy may learn from.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = _task(folder)
    tables = [_task(other).table for other in history]
    budget = budget_fraction * task.table.grid_compute_s
    traces = [
        replay(task.table, make_setup(strategy, task, seed, tables), workers, budget)
        for seed in seeds
    ]
    return (
        summarise(task.table, strategy, workers, traces),
        regret_curve(task.table, strategy, workers, traces, budget_fraction),
    )


def history_for(folder: str, known: Sequence[str]) -> tuple[str, ...]:
    """The tables a learning strategy replayed on ``folder`` may learn from: every known one
    but the task itself (the same folder, or a folder of the same task name)."""
    name = Path(folder).name
    others = (other for other in known if other != folder and Path(other).name != name)
    return tuple(dict.fromkeys(others))


def run_benchmark(
    folders: Sequence[str | Path],
    strategies: Sequence[str],
    seeds: Sequence[int],
    workers: Sequence[int],
    budget_fraction: float = DEFAULT_BUDGET,
    processes: int = 2,
    history: Sequence[str | Path] = (),
) -> tuple[list[ResultRow], list[RegretCurve]]:
    """Every strategy on every table at every worker count, in ``processes`` processes.

    A strategy that learns from other tasks sees every table replayed and every table of
    ``history``, but never the task it is replayed on (leave one task out: by folder and by
    task folder name).
    """
    folders = [str(folder) for folder in folders]
    known = [*folders, *(str(folder) for folder in history)]
    jobs = [
        (folder, strategy, count, tuple(seeds), budget_fraction, history_for(folder, known))
        for folder in folders for strategy in strategies for count in workers
    ]  # fmt: skip
    if processes <= 1:
        outputs = [run_group(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            outputs = list(pool.map(run_group, *zip(*jobs, strict=True)))
    return [row for row, _ in outputs], [curve for _, curve in outputs]
