"""The replay benchmark run: strategies replayed on tables with many seeds, in processes.

A strategy that learns from past sweeps gets them as a real store holds them
(:func:`past_sweep`): the completed trials of each past task's own default sweep of
:data:`HISTORY_TRIALS` trials, replayed by the same simulator; the exhaustive ranking of a
whole table is the second view, what the shipped prior gives a new user (every point of
each of its tables, where a store of the user's own sweeps holds about 16 trials of each).
The past tasks exclude the task replayed (leave one task out) or every task of its
pre-trained source (leave one source out: what a user with a new domain has). What is
measured of each replay is :mod:`.metrics`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nonbinary_ft.analysis.recommend import row_answers
from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.history.table import TaskTable, read_table
from nonbinary_ft.replay.metrics import (
    DEFAULT_BUDGET,
    RegretCurve,
    ResultRow,
    regret_curve,
    summarise,
)
from nonbinary_ft.replay.simulate import replay
from nonbinary_ft.replay.strategies import LEARNERS, ReplayTask, make_setup
from nonbinary_ft.search.warm_start import PastSweep
from nonbinary_ft.tuning import searcher

__all__ = [
    "HISTORY_TRIALS",
    "HOLDOUTS",
    "ScienceRow",
    "science_row",
    "past_sweep",
    "history_for",
    "run_group",
    "run_benchmark",
]

HISTORY_TRIALS = 16
"""Trials of a past task's default sweep (``budget.num_samples``'s default)."""
HOLDOUTS = ("task", "source")
"""What a learning strategy's history leaves out: the task, or every task of its source."""


@dataclass(frozen=True)
class ScienceRow:
    """The regime the evidence predicts against the table's best point on table 7's rows."""

    task: str
    regime: str
    gap: float | None
    fisher: float | None
    best_settings: dict
    best_val: float
    agrees: dict[str, bool | None] = field(default_factory=dict)


def science_row(table: TaskTable) -> ScienceRow:
    """Does the evidence's regime predict the table's best point on table 7's rows?

    The learning-rate row reads 'low' below the median of the grid's learning rates; the
    regime predicts low for ``fits_well`` and high for ``fits_poorly``.
    """
    best = int(np.nanargmax(table.mean_val))
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
        best_val=float(table.mean_val[best]),
        agrees=agrees,
    )


@functools.lru_cache(maxsize=64)
def _task(folder: str) -> ReplayTask:
    return ReplayTask.from_table(read_table(folder))


@functools.lru_cache(maxsize=4096)
def past_sweep(folder: str, seed: int, exhaustive: bool = False) -> PastSweep:
    """A past task as a store holds it: its own default sweep (``nbft sweep`` with no
    history, :data:`HISTORY_TRIALS` trials, one worker, seed ``seed``) replayed, its
    completed trials ranked; or, ``exhaustive``, every point of its table (as the shipped
    prior holds it).

    Raises:
        TableError: the table has no stage-1 evidence.
    """
    task = _task(folder)
    table = task.table
    if exhaustive:
        return table.as_past_sweep()
    trace = replay(
        table, make_setup("tpe_rush", task, seed), 1, max_trials=HISTORY_TRIALS,
        stop_at_best=False,
    )  # fmt: skip
    points = sorted({point for _, point in trace.completed}, key=lambda p: -table.final_val[p])
    ranked = tuple((dict(table.points[p]), float(table.final_val[p])) for p in points)
    return dataclasses.replace(table.as_past_sweep(), ranked=ranked)


def history_for(folder: str, known: Sequence[str], holdout: str = "task") -> tuple[str, ...]:
    """The tables a learning strategy replayed on ``folder`` may learn from: every known one
    but the task itself (the same folder, or a folder of the same task name), and with
    ``holdout`` 'source' every table of the same pre-trained source too."""
    name = Path(folder).name
    others = [other for other in known if other != folder and Path(other).name != name]
    if holdout == "source":
        source = _task(folder).source
        others = [other for other in others if _task(other).source != source]
    return tuple(dict.fromkeys(others))


def run_group(
    folder: str,
    strategy: str,
    workers: int,
    seeds: Sequence[int],
    budget_fraction: float = DEFAULT_BUDGET,
    history: Sequence[str] = (),
    holdout: str = "-",
    split: str = "",
    exhaustive: bool = False,
) -> tuple[ResultRow, RegretCurve]:
    """Replay one strategy on one table with every seed (one unit of parallel work).

    Args:
        folder: the table's folder.
        strategy: the strategy's name.
        workers: trials at once.
        seeds: the search seeds.
        budget_fraction: each replay stops after this share of the grid's compute.
        history: folders of the tables the strategy may learn from.
        holdout: what the history leaves out ('task', 'source'; '-': not a learner).
        split: the table's split ('design', 'evaluation', '' when undeclared).
        exhaustive: past tasks as whole tables (as the shipped prior holds them) instead of
            past sweeps.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # A replay that draws every point of a table is an outcome it measures, not news: the
    # searcher's warning for it would be printed once per seed and task.
    logging.getLogger(searcher.__name__).setLevel(logging.ERROR)
    task = _task(folder)
    budget = budget_fraction * task.table.grid_compute_s
    traces, charged = [], 0.0
    for seed in seeds:
        past = [past_sweep(other, seed, exhaustive) for other in history]
        setup = make_setup(strategy, task, seed, past)
        charged = setup.charged_analysis_s
        traces.append(replay(task.table, setup, workers, budget))
    row = summarise(task.table, strategy, workers, traces, charged, holdout, split)
    return row, regret_curve(task.table, row.variant, workers, traces, budget_fraction, split)


def run_benchmark(
    folders: Sequence[str | Path],
    strategies: Sequence[str],
    seeds: Sequence[int],
    workers: Sequence[int],
    budget_fraction: float = DEFAULT_BUDGET,
    processes: int = 2,
    history: Sequence[str | Path] = (),
    splits: Mapping[str, str] | None = None,
    holdouts: Sequence[str] = HOLDOUTS,
    exhaustive: bool = False,
) -> tuple[list[ResultRow], list[RegretCurve]]:
    """Every strategy on every table at every worker count, in ``processes`` processes.

    A strategy that learns from other tasks sees every table replayed and every table of
    ``history``, never the task it is replayed on, once per holdout of ``holdouts``.

    Args:
        splits: task name -> 'design' or 'evaluation' (missing: '').
    """
    folders = [str(folder) for folder in folders]
    known = [*folders, *(str(folder) for folder in history)]
    splits = splits or {}
    jobs = []
    for folder in folders:
        split = splits.get(Path(folder).name, "")
        for strategy in strategies:
            kinds = holdouts if strategy in LEARNERS else ("-",)
            for holdout, count in ((h, w) for h in kinds for w in workers):
                past = history_for(folder, known, holdout) if holdout != "-" else ()
                jobs.append(
                    (folder, strategy, count, tuple(seeds), budget_fraction, past, holdout,
                     split, exhaustive)
                )  # fmt: skip
    if processes <= 1:
        outputs = [run_group(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            outputs = list(pool.map(run_group, *zip(*jobs, strict=True)))
    return [row for row, _ in outputs], [curve for _, curve in outputs]
