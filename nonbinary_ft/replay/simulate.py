"""A discrete-event replay of a sweep on a table: simulated time, W workers, no Ray processes.

The searcher and the scheduler are the sweep's own objects, driven through the hooks Ray
Tune's controller calls, in its order:

- a free worker runs what ``scheduler.choose_trial_to_run`` picks (a pending or paused
  trial); when it picks none, ``searcher.suggest`` makes a new trial (``None``: wait,
  ``FINISHED``: no more), which ``scheduler.on_trial_add`` hears of;
- each epoch's result goes to ``scheduler.on_trial_result``, then, unless it stops the
  trial, to ``searcher.on_trial_result``; a result that ends the trial (its last epoch, or a
  ``STOP``) is followed by ``scheduler.on_trial_complete`` and
  ``searcher.on_trial_complete`` with it; ``PAUSE`` frees the worker and keeps the trial;
- stage 1, when a strategy's real sweep runs it beside the search, occupies one worker for
  the time its compute took (the cheap evidence, and the from-scratch run when the sweep runs
  one) and is charged in full at the start; its evidence is handed to the strategy once the
  part it waits for is done. A sweep that runs stage 1 after its search is charged it when
  the search has nothing left to run.

Every result is looked up in the :class:`~nonbinary_ft.history.table.TaskTable`; an epoch
takes, in simulated time and in compute, the seconds it took when the table was collected.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nonbinary_ft.history.table import TaskTable
from nonbinary_ft.search.policy import settings_of

__all__ = ["Setup", "SimTrial", "Event", "Trace", "replay"]

# Ray Tune's words (Trial's states, the scheduler's decisions, the searcher's end), spelled
# out here so that a replay needs no Ray import of its own.
PENDING, RUNNING, PAUSED, TERMINATED = "PENDING", "RUNNING", "PAUSED", "TERMINATED"
CONTINUE, PAUSE, STOP = "CONTINUE", "PAUSE", "STOP"
FINISHED = "FINISHED"


@dataclass
class Setup:
    """What a strategy replays with.

    Attributes:
        searcher: suggests configs (Ray Tune's ``Searcher`` interface).
        scheduler: judges results (Ray Tune's ``TrialScheduler`` interface).
        evidence_s: seconds of stage-1 compute before the evidence is in (None: not used).
        on_evidence: called when the evidence is in.
        analysis_s: seconds stage 1 holds its worker in all (at least ``evidence_s``: the
            from-scratch run goes on after the cheap evidence); None: ``evidence_s``.
        after_search_s: seconds of stage 1 run after the search instead (None: not so).
        cleanup: called when the replay ends (releases what the strategy registered).
    """

    searcher: Any
    scheduler: Any
    evidence_s: float | None = None
    on_evidence: Callable[[], None] | None = None
    analysis_s: float | None = None
    after_search_s: float | None = None
    cleanup: Callable[[], None] | None = None

    @property
    def charged_analysis_s(self) -> float:
        """The stage-1 compute this strategy's sweep pays (with its search or after it)."""
        if self.analysis_s is not None:
            return self.analysis_s
        return self.evidence_s or self.after_search_s or 0.0


@dataclass
class SimTrial:
    """A trial of the replay, shaped like Ray Tune's ``Trial`` where schedulers look."""

    trial_id: str
    config: dict[str, Any]
    point: int
    status: str = PENDING
    epoch: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """What happened in a replay, in order (a suggestion, a stop, a pause, an end)."""

    kind: str
    trial_id: str
    point: int
    epoch: int
    compute_s: float


@dataclass
class Trace:
    """A replay's outcome.

    Attributes:
        compute_s: the compute at each step of the incumbent (seconds, analysis included).
        incumbent_val, incumbent_test, incumbent_point: the best completed trial's
            validation accuracy, its test accuracy and its point, from then on.
        completed: every completed trial as (compute when it ended, its point), in order.
        events: suggestions and the scheduler's decisions, in order.
        total_compute_s: compute spent when the replay ended.
        wall_s: simulated time when it ended.
        trials: trials started.
    """

    compute_s: list[float] = field(default_factory=list)
    incumbent_val: list[float] = field(default_factory=list)
    incumbent_test: list[float] = field(default_factory=list)
    incumbent_point: list[int] = field(default_factory=list)
    completed: list[tuple[float, int]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    total_compute_s: float = 0.0
    wall_s: float = 0.0
    trials: int = 0


class _Controller:
    """The part of Ray Tune's controller that schedulers read: the trials."""

    def __init__(self) -> None:
        self.trials: list[SimTrial] = []

    def get_trials(self) -> list[SimTrial]:
        return self.trials


class _Replay:
    def __init__(
        self,
        table: TaskTable,
        setup: Setup,
        workers: int,
        budget_s: float,
        max_trials: int | None,
        stop_at_best: bool = True,
    ):
        self.table, self.setup, self.budget_s = table, setup, budget_s
        self.max_trials, self.stop_at_best = max_trials, stop_at_best
        self.free = workers
        self.clock = 0.0
        self.compute = 0.0
        self.queue: list[tuple[float, int, str, SimTrial | None]] = []
        self.order = itertools.count()
        self.controller = _Controller()
        self.finished_suggesting = False
        self.trace = Trace()
        self.best: tuple[float, float, int] | None = None

    def _schedule(self, at: float, kind: str, trial: SimTrial | None) -> None:
        heapq.heappush(self.queue, (at, next(self.order), kind, trial))

    def _event(self, kind: str, trial: SimTrial) -> None:
        self.trace.events.append(
            Event(kind, trial.trial_id, trial.point, trial.epoch, self.compute)
        )

    def _new_trial(self) -> SimTrial | None:
        """A new trial from the searcher, or None (it waits or is finished)."""
        if self.max_trials is not None and len(self.controller.trials) >= self.max_trials:
            self.finished_suggesting = True  # as Ray Tune after num_samples trials
            return None
        trial_id = f"t{len(self.controller.trials):05d}"
        config = self.setup.searcher.suggest(trial_id)
        if config is None:
            return None
        if config == FINISHED:
            self.finished_suggesting = True
            return None
        trial = SimTrial(trial_id, dict(config), self.table.index_of(settings_of(config)))
        self.controller.trials.append(trial)
        self.setup.scheduler.on_trial_add(self.controller, trial)
        self._event("suggest", trial)
        self.trace.trials += 1
        return trial

    def _run_next_epoch(self, trial: SimTrial) -> None:
        trial.status = RUNNING
        seconds = self.table.epoch_s[trial.point, trial.epoch]
        self._schedule(self.clock + float(seconds), "result", trial)

    def fill(self) -> None:
        """Give every free worker a trial, as long as the budget lasts."""
        while self.free > 0 and self.compute < self.budget_s and not self._found_the_best():
            trial = self.setup.scheduler.choose_trial_to_run(self.controller)
            if trial is None:
                if self.finished_suggesting or self._new_trial() is None:
                    return
                continue
            self.free -= 1
            self._run_next_epoch(trial)

    def _result(self, trial: SimTrial) -> dict[str, Any]:
        point, epoch = trial.point, trial.epoch
        last = epoch == self.table.epochs_of(point)
        completed = last and epoch == self.table.epochs
        status = "completed" if completed else ("diverged" if last else "running")
        return {
            "epoch": epoch,
            "training_iteration": epoch,
            "val_accuracy": float(self.table.val[point, epoch - 1]),
            "test_accuracy": float(self.table.test[point, epoch - 1]),
            "status": status,
            "done": last,
            "trial_id": trial.trial_id,
        }

    def _complete(self, trial: SimTrial, result: dict[str, Any], kind: str) -> None:
        trial.status = TERMINATED
        self.setup.scheduler.on_trial_complete(self.controller, trial, result)
        self.setup.searcher.on_trial_complete(trial.trial_id, result=result)
        self._event(kind, trial)
        self.free += 1
        if result["status"] == "completed":
            self.trace.completed.append((self.compute, trial.point))
            score = (result["val_accuracy"], result["test_accuracy"], trial.point)
            if self.best is None or score[0] > self.best[0]:
                self.best = score
        if self.best is not None:
            self.trace.compute_s.append(self.compute)
            self.trace.incumbent_val.append(self.best[0])
            self.trace.incumbent_test.append(self.best[1])
            self.trace.incumbent_point.append(self.best[2])

    def on_result(self, trial: SimTrial) -> None:
        trial.epoch += 1
        self.compute += float(self.table.epoch_s[trial.point, trial.epoch - 1])
        result = self._result(trial)
        trial.last_result = result
        if result["done"]:  # Ray stops a done trial without asking the scheduler
            self._complete(trial, result, "end")
            return
        decision = self.setup.scheduler.on_trial_result(self.controller, trial, result)
        if decision == STOP:
            self._complete(trial, result, "stop")
        elif decision == PAUSE:
            trial.status = PAUSED
            self.free += 1
            self._event("pause", trial)
        else:
            self.setup.searcher.on_trial_result(trial.trial_id, result)
            self._run_next_epoch(trial)

    def _found_the_best(self) -> bool:
        # From here on the incumbent cannot change whatever the strategy does: nothing left
        # to measure (unless the whole run is wanted, as for a past sweep's history).
        return (
            self.stop_at_best and self.best is not None and self.best[0] >= self.table.best_val
        )

    def run(self) -> Trace:
        setup = self.setup
        if setup.evidence_s is not None or setup.analysis_s is not None:
            # Stage 1 holds one worker until its last part is done, and is charged in full.
            self.free -= 1
            self.compute += setup.charged_analysis_s
            if setup.evidence_s is not None:
                self._schedule(setup.evidence_s, "evidence", None)
            self._schedule(setup.charged_analysis_s, "analysis", None)
        self.fill()
        while self.queue and self.compute < self.budget_s and not self._found_the_best():
            self.clock, _, kind, trial = heapq.heappop(self.queue)
            if kind == "evidence":
                if setup.on_evidence is not None:
                    setup.on_evidence()
            elif kind == "analysis":
                self.free += 1
            else:
                assert trial is not None
                self.on_result(trial)
            self.fill()
        if not self.queue and setup.after_search_s:
            # The search is over (the budget and the best point aside): stage 1 runs now.
            self.compute += setup.after_search_s
            self.clock += setup.after_search_s
        self.trace.total_compute_s, self.trace.wall_s = self.compute, self.clock
        return self.trace


def replay(
    table: TaskTable,
    setup: Setup,
    workers: int,
    budget_s: float | None = None,
    max_trials: int | None = None,
    stop_at_best: bool = True,
) -> Trace:
    """Replay one search on ``table`` with ``workers`` in parallel.

    The replay ends when the budget is spent, when the strategy has nothing left to run,
    or (with ``stop_at_best``) when it has found the table's best point by seed 0's
    validation accuracy (its incumbent cannot change from then on).

    Args:
        table: the task's recorded curves.
        setup: the strategy's searcher, scheduler and evidence.
        workers: trials (and the analysis) running at once.
        budget_s: stop once this much compute is spent; default: the whole grid's.
        max_trials: start at most this many trials (Ray Tune's ``num_samples``).

    Returns:
        The trace: the incumbent against compute, and every decision.
    """
    budget = table.grid_compute_s if budget_s is None else budget_s
    try:
        return _Replay(table, setup, workers, budget, max_trials, stop_at_best).run()
    finally:
        if setup.cleanup is not None:
            setup.cleanup()


def regret_at(trace: Trace, best_val: float, grid: np.ndarray) -> np.ndarray:
    """The regret (points of validation accuracy) at each compute in ``grid``; NaN before the
    first completed trial."""
    regret = np.full(grid.shape, np.nan)
    if not trace.compute_s:
        return regret
    index = np.searchsorted(np.asarray(trace.compute_s), grid, side="right") - 1
    known = index >= 0
    values = 100.0 * (best_val - np.asarray(trace.incumbent_val))
    regret[known] = values[index[known]]
    return regret
