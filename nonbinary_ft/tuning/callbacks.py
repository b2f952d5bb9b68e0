"""Driver-side Ray Tune callbacks: the scheduler's bridge into results, and MLflow runs.

:func:`sweep_callbacks` builds a stage's callbacks in the order Ray must call them:

1. :class:`SchedulerBridge` writes how a stopped trial ended into the very result that
   stopped it (Ray hands the scheduler a copy, and the callbacks the result it stores), and
   carries the scheduler's state across ``Tuner.restore``;
2. :class:`MlflowTrialCallback` writes a child run per trial, so it must see the stamp;
3. the progress display (:mod:`nonbinary_ft.tuning.progress`).

All are pickled by Ray into the experiment folder and restored on ``--resume``; they hold no
live connection (the MLflow client is rebuilt on first use). The MLflow callback saves its
trial-id -> run-id map through ``get_state``/``set_state``, and on resume also adopts runs it
created after Ray's last snapshot (found by their tags), so every trial keeps exactly one run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from nonbinary_ft.results.io import jsonable
from nonbinary_ft.search.policy import DecisionLog
from nonbinary_ft.tracking import SweepTracker
from nonbinary_ft.tracking.runs import DatasetInfo
from nonbinary_ft.tuning.progress import ProgressCallback
from nonbinary_ft.tuning.scheduler import PruningScheduler
from nonbinary_ft.tuning.status import sweep_status
from nonbinary_ft.vocabulary import Stage

__all__ = ["SchedulerBridge", "MlflowTrialCallback", "sweep_callbacks"]

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


def _numeric_metrics(result: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in result.items()
        if key not in NOT_METRICS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and (math.isfinite(value) or key.endswith("loss"))
    }


class SchedulerBridge(Callback):
    """Carries the pruning scheduler's decisions into results, and its state across restore.

    The scheduler decides on a copy of each result; this callback writes the verdict
    (``status`` 'pruned' or 'early_stopped', ``prune_reason``, ``done``) into the result Ray
    stores, so that it reaches the experiment state, the ``ResultGrid`` and MLflow. Ray Tune
    pickles the scheduler once, when the experiment starts, and checkpoints only the searcher
    and the callbacks after that: without this callback a resumed sweep's ASHA would start from
    empty rungs. The callback and the scheduler are pickled together in the experiment's
    ``tuner.pkl``, so after ``Tuner.restore`` it still points at the scheduler in use.

    Args:
        scheduler: the sweep's scheduler.
    """

    def __init__(self, scheduler: PruningScheduler) -> None:
        self.scheduler = scheduler

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        """Stamp the result if the scheduler has just stopped this trial."""
        self.scheduler.judge.stamp(trial.trial_id, result)

    def get_state(self) -> dict[str, Any]:
        """The scheduler's state (saved with each experiment checkpoint)."""
        return {"scheduler": self.scheduler.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put the saved state back into the scheduler (on --resume)."""
        self.scheduler.set_state(state["scheduler"])


class MlflowTrialCallback(Callback):
    """Writes a child run per trial: settings as params, metrics per epoch, status, reason.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment: MLflow experiment name.
        sweep_key: the sweep's identity (a tag on its runs).
        parent_run_id: the sweep's parent run.
        stage: the stage whose trials it tracks (a tag on each child run).
        decisions: the sweep's decision log, written to the parent run as it grows (None:
            not written by this stage).
        datasets: the splits, logged as each run's dataset inputs.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        sweep_key: str,
        parent_run_id: str,
        stage: Stage,
        decisions: DecisionLog | None = None,
        datasets: Sequence[DatasetInfo] = (),
    ) -> None:
        self.tracking_uri = tracking_uri
        self.datasets = tuple(datasets)
        self.experiment = experiment
        self.sweep_key = sweep_key
        self.parent_run_id = parent_run_id
        self.stage = str(stage)
        self.decisions = decisions
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
            run_id = self.tracker.start_trial(
                self.stage, trial_id, dict(trial.config), self.datasets
            )
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
        status = sweep_status(trial.status, result.get("status"), ended=True)
        self.tracker.end_trial(self._run_for(trial), str(status), result.get("prune_reason"))

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
        """Flush decisions; delete runs of trials that the experiment no longer has.

        A driver killed before its experiment state reached storage (on S3 it is uploaded
        a few seconds behind) leaves runs of trials that the restored state never knew;
        they are deleted (MLflow keeps deleted runs restorable), so each trial has one run.
        """
        self._flush_decisions()
        known = {trial.trial_id for trial in trials}
        for trial_id, run_id in self.tracker.trial_runs(self.stage).items():
            if trial_id not in known:
                logger.info("deleting MLflow run %s of lost trial %s", run_id, trial_id)
                self.tracker.delete_run(run_id)

    def _flush_decisions(self) -> None:
        # Counted in memory (cheap, every step); the log file is read only when it grew.
        if self.decisions is None or len(self.decisions) == self._decisions_seen:
            return
        # One file per driver session: a resumed sweep adds its own, never overwrites.
        self._session = self._session or time.strftime("%Y%m%d-%H%M%S")
        self.tracker.log_decisions(
            (jsonable(decision) for decision in self.decisions.decisions()), self._session
        )
        self._decisions_seen = len(self.decisions)


def sweep_callbacks(
    scheduler: Any, mlflow: MlflowTrialCallback, progress: ProgressCallback
) -> list[Callback]:
    """A stage's callbacks, in the order Ray Tune must call them (it calls them in list order).

    The bridge comes first: MLflow must see a stopped trial's stamped status and reason.

    Args:
        scheduler: the stage's scheduler (a bridge is added for a :class:`PruningScheduler`).
        mlflow: the stage's MLflow callback.
        progress: the stage's progress callback.
    """
    bridge = [SchedulerBridge(scheduler)] if isinstance(scheduler, PruningScheduler) else []
    return [*bridge, mlflow, progress]
