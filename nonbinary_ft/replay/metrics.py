"""What the replay measures of a search, from its traces: pure functions, small records.

Two views of a search, both charged everything its real sweep runs (stage 1 included):

- **normalised regret** of the *test* accuracy of the incumbent (the completed trial best on
  validation, as a user would pick it) at :data:`BUDGETS` of the grid's compute:
  ``(best - incumbent) / (best - worst)`` over the table's points' mean test accuracy, 1
  before any trial has completed. Averaged over tasks with each strategy's average rank per
  budget (:func:`summarise_tasks`), as Quick-Tune and HPOBench report it;
- **compute to target**: the compute until a completed trial is one of the table's target
  points (:attr:`~nonbinary_ft.history.table.TaskTable.target_points`: as good as the best
  within the seeds' noise), median over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nonbinary_ft.history.table import TaskTable
from nonbinary_ft.replay.simulate import Trace, regret_at

__all__ = [
    "BUDGETS",
    "DEFAULT_BUDGET",
    "curve_fractions",
    "ResultRow",
    "RegretCurve",
    "SummaryRow",
    "compute_to_target",
    "normalised_regret",
    "budgets_worse",
    "summarise",
    "summarise_tasks",
    "regret_curve",
]

BUDGETS = (0.01, 0.02, 0.05, 0.10, 0.25)
"""Where the normalised regret is read, as shares of the grid's compute."""
DEFAULT_BUDGET = 0.25
"""Each replay's budget, as a share of the whole grid's compute: the last of the budgets."""


def curve_fractions(budget_fraction: float) -> np.ndarray:
    """Where the regret curves are read: from 0.1 % of the grid's compute to the budget."""
    return np.logspace(-3, np.log10(budget_fraction), 61)


@dataclass(frozen=True)
class ResultRow:
    """One strategy on one task at one worker count, over its seeds.

    Compute is in seconds; ``None`` where the median seed never reached the target.
    ``normalised_regret`` maps each budget (``"0.05"``: 5 % of the grid's compute) to the
    mean over seeds; ``charged_analysis_s`` is the stage-1 compute each seed was charged.
    """

    task: str
    split: str
    strategy: str
    holdout: str
    workers: int
    seeds: int
    grid_compute: float
    target_points: int
    charged_analysis_s: float
    median_compute_to_target: float | None
    median_fraction_to_target: float | None
    reached: int
    normalised_regret: dict[str, float]
    regret_spread: dict[str, float]
    median_final_test: float | None
    best_point_test: float
    median_trials: float

    @property
    def variant(self) -> str:
        """The strategy, with its holdout when it learns from past sweeps."""
        return self.strategy if self.holdout in ("-", "task") else f"{self.strategy}/loso"


@dataclass(frozen=True)
class RegretCurve:
    """Against compute (fraction of the grid's): validation regret in points (median and
    quartiles over seeds) and the mean normalised test regret."""

    task: str
    strategy: str
    workers: int
    fractions: tuple[float, ...]
    median: tuple[float, ...]
    q25: tuple[float, ...]
    q75: tuple[float, ...]
    normalised: tuple[float, ...] = ()
    split: str = ""


@dataclass(frozen=True)
class SummaryRow:
    """A strategy across the tasks of one split at one worker count: mean normalised regret
    and average rank (1 = best) per budget."""

    split: str
    strategy: str
    workers: int
    tasks: int
    mean_regret: dict[str, float]
    mean_rank: dict[str, float]
    median_fraction_to_target: float | None
    reached_tasks: int


def compute_to_target(trace: Trace, targets: Collection[int]) -> float | None:
    """The compute when a completed trial first was one of the ``targets`` points."""
    for compute, point in trace.completed:
        if point in targets:
            return compute
    return None


def normalised_regret(trace: Trace, table: TaskTable, budgets_s: np.ndarray) -> np.ndarray:
    """The incumbent's normalised test regret at each compute of ``budgets_s`` (1 before the
    first completed trial)."""
    test = table.mean_test
    best, worst = float(np.nanmax(test)), float(np.nanmin(test))
    span = best - worst if best > worst else 1.0
    regret = np.ones(budgets_s.shape)
    if not trace.compute_s:
        return regret
    index = np.searchsorted(np.asarray(trace.compute_s), budgets_s, side="right") - 1
    points = np.asarray(trace.incumbent_point)
    known = index >= 0
    regret[known] = (best - test[points[index[known]]]) / span
    return regret


def _median_or_none(values: Sequence[float | None]) -> float | None:
    """The median, where a missing value counts as infinite (never reached)."""
    finite = sorted(math.inf if v is None else v for v in values)
    median = float(np.median(finite)) if finite else math.inf
    return None if math.isinf(median) else median


def _budget_key(budget: float) -> str:
    return f"{budget:g}"


def _by_budget(values: np.ndarray) -> dict[str, float]:
    return {_budget_key(b): float(v) for b, v in zip(BUDGETS, values, strict=True)}


def summarise(
    table: TaskTable,
    strategy: str,
    workers: int,
    traces: Sequence[Trace],
    charged_analysis_s: float = 0.0,
    holdout: str = "-",
    split: str = "",
) -> ResultRow:
    """The row of the benchmark's output for one group of seeds."""
    targets = table.target_points
    reached = [compute_to_target(trace, targets) for trace in traces]
    budgets_s = np.asarray(BUDGETS) * table.grid_compute_s
    regrets = np.stack([normalised_regret(trace, table, budgets_s) for trace in traces])
    final_test = [table.mean_test[trace.incumbent_point[-1]] for trace in traces if trace.compute_s]
    median = _median_or_none(reached)
    best_point = int(np.nanargmax(table.mean_val))
    return ResultRow(
        task=table.task,
        split=split,
        strategy=strategy,
        holdout=holdout,
        workers=workers,
        seeds=len(traces),
        grid_compute=table.grid_compute_s,
        target_points=len(targets),
        charged_analysis_s=charged_analysis_s,
        median_compute_to_target=median,
        median_fraction_to_target=None if median is None else median / table.grid_compute_s,
        reached=sum(value is not None for value in reached),
        normalised_regret=_by_budget(regrets.mean(axis=0)),
        regret_spread=_by_budget(regrets.std(axis=0)),
        median_final_test=float(np.median(final_test)) if final_test else None,
        best_point_test=float(table.mean_test[best_point]),
        median_trials=float(np.median([trace.trials for trace in traces])),
    )


def _ranks(values: Mapping[str, float]) -> dict[str, float]:
    """Rank 1 for the smallest value; ties share their average rank."""
    ordered = sorted(values.values())
    return {
        name: 1 + (ordered.index(value) + len(ordered) - 1 - ordered[::-1].index(value)) / 2
        for name, value in values.items()
    }


def summarise_tasks(rows: Sequence[ResultRow]) -> list[SummaryRow]:
    """Per split and worker count: each strategy variant's mean normalised regret over the
    tasks and its average rank among the variants, per budget."""
    summary = []
    for split in sorted({row.split for row in rows}):
        for workers in sorted({row.workers for row in rows}):
            group = [row for row in rows if row.split == split and row.workers == workers]
            tasks = sorted({row.task for row in group})
            by_task = {task: {r.variant: r for r in group if r.task == task} for task in tasks}
            ranks: dict[str, dict[str, list[float]]] = {}
            for task_rows in by_task.values():
                for budget in map(_budget_key, BUDGETS):
                    values = {v: r.normalised_regret[budget] for v, r in task_rows.items()}
                    for variant, rank in _ranks(values).items():
                        ranks.setdefault(variant, {}).setdefault(budget, []).append(rank)
            for variant in sorted(ranks):
                mine = [r for r in group if r.variant == variant]
                summary.append(
                    SummaryRow(
                        split=split,
                        strategy=variant,
                        workers=workers,
                        tasks=len(mine),
                        mean_regret={
                            b: float(np.mean([r.normalised_regret[b] for r in mine]))
                            for b in map(_budget_key, BUDGETS)
                        },
                        mean_rank={b: float(np.mean(v)) for b, v in ranks[variant].items()},
                        median_fraction_to_target=_median_or_none(
                            [r.median_fraction_to_target for r in mine]
                        ),
                        reached_tasks=sum(r.median_fraction_to_target is not None for r in mine),
                    )
                )
    return summary


def regret_curve(
    table: TaskTable,
    strategy: str,
    workers: int,
    traces: Sequence[Trace],
    budget_fraction: float = DEFAULT_BUDGET,
    split: str = "",
) -> RegretCurve:
    """Validation regret (median and quartiles) and mean normalised test regret against
    compute, up to the budget. Before a seed's first completed trial its validation regret
    is the whole best accuracy."""
    fractions = curve_fractions(budget_fraction)
    grid = fractions * table.grid_compute_s
    regrets = np.stack([regret_at(trace, table.best_val, grid) for trace in traces])
    regrets = np.where(np.isnan(regrets), 100 * table.best_val, regrets)
    q25, median, q75 = np.percentile(regrets, [25, 50, 75], axis=0)
    normalised = np.mean([normalised_regret(trace, table, grid) for trace in traces], axis=0)
    return RegretCurve(
        table.task,
        strategy,
        workers,
        tuple(fractions.tolist()),
        tuple(median.tolist()),
        tuple(q25.tolist()),
        tuple(q75.tolist()),
        tuple(normalised.tolist()),
        split,
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
