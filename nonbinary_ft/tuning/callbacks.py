"""Driver-side Ray Tune callbacks: MLflow child runs per trial, and the live progress display.

Both are pickled by Ray into the experiment folder and restored on ``--resume``; they hold no
live connection (the MLflow client is rebuilt on first use, the progress listener is looked up
by the sweep's key in :mod:`nonbinary_ft.tuning.live`). The MLflow callback saves its
trial-id -> run-id map through ``get_state``/``set_state``, and on resume also adopts runs it
created after Ray's last snapshot (found by their tags), so every trial keeps exactly one run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from nonbinary_ft.tracking import SweepTracker
from nonbinary_ft.tuning import live
from nonbinary_ft.tuning.pruning import settings_of

__all__ = [
    "MlflowTrialCallback",
    "ProgressCallback",
    "SweepProgress",
    "TrialRow",
    "ended_status",
    "trial_status",
]

logger = logging.getLogger(__name__)

# Keys of a trial result that are Ray's bookkeeping, not the trial's metrics.
NOT_METRICS = frozenset(
    {
        "done",
        "epoch",
        "timestamp",
        "training_iteration",
        "time_this_iter_s",
        "time_total_s",
        "time_since_restore",
        "iterations_since_restore",
        "pid",
        "started_at",
        "reported_at",
        "resumed_from",
        "replayed",
    }
)
TERMINAL = ("completed", "diverged", "pruned", "early_stopped", "stopped", "error")


def trial_status(trial: Trial) -> str:
    """A trial's status in the sweep's words.

    'pending', 'running', or once it ended: 'completed', 'diverged', 'pruned',
    'early_stopped', 'error', or 'stopped' (ended by the time budget).
    """
    if trial.status == Trial.ERROR:
        return "error"
    if trial.status in (Trial.PENDING, Trial.PAUSED):
        return "pending"
    reported = (trial.last_result or {}).get("status")
    if trial.status == Trial.RUNNING:
        return reported if reported in ("pruned", "early_stopped") else "running"
    return reported if reported in TERMINAL else "stopped"


def ended_status(trial: Trial) -> str:
    """The status of a trial that has just ended (Ray still calls it RUNNING at that point)."""
    if trial.status == Trial.ERROR:
        return "error"
    reported = (trial.last_result or {}).get("status")
    # A trial that ended while 'running' was stopped from outside (the time budget).
    return reported if reported in TERMINAL else "stopped"


def _numeric_metrics(result: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in result.items()
        if key not in NOT_METRICS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and (math.isfinite(value) or key.endswith("loss"))
    }


class MlflowTrialCallback(Callback):
    """Writes a child run per trial: settings as params, metrics per epoch, status, reason.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment: MLflow experiment name.
        sweep_key: the sweep's identity (tags, and the live decision log).
        parent_run_id: the sweep's parent run.
        stage: 'search' or 'final' (a tag on each child run).
        log_decisions: also write the sweep's pruning decisions to the parent run.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        sweep_key: str,
        parent_run_id: str,
        stage: str,
        log_decisions: bool = True,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.sweep_key = sweep_key
        self.parent_run_id = parent_run_id
        self.stage = stage
        self.log_decisions = log_decisions
        self._runs: dict[str, str] = {}
        self._last_step: dict[str, int] = {}
        self._node_tags: dict[str, Any] = {}
        self._restored = False
        self._verified: set[str] = set()
        self._existing: dict[str, str] | None = None
        self._decisions_seen = 0
        self._session: str | None = None
        self._tracker: SweepTracker | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tracker"] = None  # a live client: rebuilt where the callback is unpickled
        state["_existing"] = None
        state["_verified"] = set()
        state["_decisions_seen"] = 0
        state["_session"] = None
        return state

    @property
    def tracker(self) -> SweepTracker:
        """The MLflow side, built on first use."""
        if self._tracker is None:
            self._tracker = SweepTracker(self.tracking_uri, self.experiment, self.sweep_key)
            self._tracker.attach_parent(self.parent_run_id)
        return self._tracker

    def get_state(self) -> dict[str, Any]:
        """What Ray saves with the experiment: the trial -> run map and logged epochs."""
        return {"runs": dict(self._runs), "last_step": dict(self._last_step)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (on --resume)."""
        self._runs = dict(state.get("runs", {}))
        self._last_step = dict(state.get("last_step", {}))
        self._restored = True

    def _run_for(self, trial: Trial) -> str:
        trial_id = trial.trial_id
        run_id = self._runs.get(trial_id)
        if run_id is None and self._restored:
            if self._existing is None:
                self._existing = self.tracker.trial_runs(self.stage)
            run_id = self._existing.get(trial_id)
        if run_id is None:
            # The whole config: the settings, and in stage 3 also the seed and the rank.
            run_id = self.tracker.start_trial(self.stage, trial_id, dict(trial.config))
            self._verified.add(trial_id)
        self._runs[trial_id] = run_id
        if trial_id not in self._verified:
            # Epochs may have been logged after the snapshot this state came from.
            logged = self.tracker.last_step(run_id)
            self._last_step[trial_id] = max(self._last_step.get(trial_id, 0), logged)
            self._verified.add(trial_id)
        return run_id

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Open (or find) the trial's run."""
        self._run_for(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        """Log a new epoch's metrics with step=epoch (an epoch already logged is skipped)."""
        run_id = self._run_for(trial)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        if epoch > self._last_step.get(trial.trial_id, 0):
            self.tracker.log_epoch(run_id, _numeric_metrics(result), epoch)
            self._last_step[trial.trial_id] = epoch
        # Tagged when the node changes (a retried trial may move), not on every epoch: each
        # tag is one more database write on the driver, between one trial and the next.
        if "node_id" in result and self._node_tags.get(trial.trial_id) != result["node_id"]:
            self.tracker.set_tags(run_id, {"nbft.node_id": result["node_id"]})
            self._node_tags[trial.trial_id] = result["node_id"]

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Close the run with the trial's status and prune reason."""
        result = trial.last_result or {}
        self.tracker.end_trial(
            self._run_for(trial), ended_status(trial), result.get("prune_reason")
        )

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Close the run as failed (after the retries of FailureConfig ran out)."""
        message = str(getattr(trial, "error_message", None) or "the trial raised an error")
        self.tracker.end_trial(self._run_for(trial), "error", message.splitlines()[-1][:500])

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Write new pruning decisions to the parent run."""
        self._flush_decisions()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Flush decisions; delete runs of trials that a resumed sweep's state had lost."""
        self._flush_decisions()
        if self._restored:
            known = {trial.trial_id for trial in trials}
            for trial_id, run_id in self.tracker.trial_runs(self.stage).items():
                if trial_id not in known:
                    logger.info("deleting MLflow run %s of lost trial %s", run_id, trial_id)
                    self.tracker.delete_run(run_id)

    def _flush_decisions(self) -> None:
        if not self.log_decisions:
            return
        decisions = live.lookup(self.sweep_key).decisions_since(0)
        if len(decisions) > self._decisions_seen:
            # One file per driver session: a resumed sweep adds its own, never overwrites.
            self._session = self._session or time.strftime("%Y%m%d-%H%M%S")
            self.tracker.log_decisions(
                (decision.to_dict() for decision in decisions), self._session
            )
            self._decisions_seen = len(decisions)


@dataclass(frozen=True)
class TrialRow:
    """One line of the progress display."""

    trial_id: str
    status: str
    epoch: int
    val_accuracy: float | None
    settings: dict[str, Any]


@dataclass(frozen=True)
class SweepProgress:
    """A snapshot of a stage of the sweep, for a live display."""

    stage: str
    total: int
    counts: dict[str, int]
    best_val_accuracy: float | None
    best_trial: str | None
    best_settings: dict[str, Any] | None
    elapsed_s: float
    rows: tuple[TrialRow, ...] = field(default=())


class ProgressCallback(Callback):
    """Calls the sweep's live progress listener with a :class:`SweepProgress` snapshot.

    Args:
        sweep_key: the key the listener is registered under.
        stage: 'search' or 'final'.
        total: trials planned for the stage.
        every_s: at most one snapshot per this many seconds (and one per finished trial).
    """

    def __init__(self, sweep_key: str, stage: str, total: int, every_s: float = 0.5) -> None:
        self.sweep_key = sweep_key
        self.stage = stage
        self.total = total
        self.every_s = every_s
        self._started = time.time()
        self._last = 0.0

    def _emit(self, trials: list[Trial], force: bool = False) -> None:
        listener = live.lookup(self.sweep_key).listener
        now = time.time()
        if listener is None or (not force and now - self._last < self.every_s):
            return
        self._last = now
        listener(self.snapshot(trials))

    def snapshot(self, trials: list[Trial]) -> SweepProgress:
        """Count the trials by status and find the best validation accuracy so far."""
        counts: dict[str, int] = {}
        rows = []
        best: tuple[float, Trial] | None = None
        for trial in trials:
            status = trial_status(trial)
            counts[status] = counts.get(status, 0) + 1
            result = trial.last_result or {}
            val = result.get("val_accuracy")
            if isinstance(val, float) and math.isfinite(val) and (best is None or val > best[0]):
                best = (val, trial)
            rows.append(
                TrialRow(
                    trial.trial_id,
                    status,
                    int(result.get("epoch", 0) or 0),
                    val,
                    settings_of(trial.config),
                )
            )
        return SweepProgress(
            stage=self.stage,
            total=max(self.total, len(trials)),
            counts=counts,
            best_val_accuracy=best[0] if best else None,
            best_trial=best[1].trial_id if best else None,
            best_settings=settings_of(best[1].config) if best else None,
            elapsed_s=time.time() - self._started,
            rows=tuple(rows),
        )

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Throttled snapshot."""
        self._emit(trials)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Snapshot when a trial ends."""
        self._emit(trials, force=True)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Last snapshot."""
        self._emit(trials, force=True)
