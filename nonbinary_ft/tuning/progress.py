"""The live progress of a sweep's stage: counts by status, the best so far, one row per trial.

:class:`ProgressCallback` (a Ray Tune callback) snapshots the stage as a :class:`SweepProgress`
and hands it to the driver session's listener (the CLI's live table), at most every
``every_s`` seconds and whenever a trial ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from nonbinary_ft.search.policy import settings_of
from nonbinary_ft.tuning.session import session_of
from nonbinary_ft.tuning.status import sweep_status
from nonbinary_ft.vocabulary import Stage, TrialStatus

__all__ = ["TrialRow", "SweepProgress", "ProgressCallback"]


@dataclass(frozen=True)
class TrialRow:
    """One line of the progress display."""

    trial_id: str
    status: TrialStatus
    epoch: int
    val_accuracy: float | None
    settings: dict[str, Any]


@dataclass(frozen=True)
class SweepProgress:
    """A snapshot of a stage of the sweep, for a live display."""

    stage: Stage
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
        stage: the stage it shows.
        total: trials planned for the stage.
        every_s: at most one snapshot per this many seconds (and one per finished trial).
    """

    def __init__(self, sweep_key: str, stage: Stage, total: int, every_s: float = 0.5) -> None:
        self.sweep_key = sweep_key
        self.stage = stage
        self.total = total
        self.every_s = every_s
        self._started = time.time()
        self._last = 0.0

    def _emit(self, trials: list[Trial], force: bool = False) -> None:
        listener = session_of(self.sweep_key).listener
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
            status = sweep_status(trial.status, (trial.last_result or {}).get("status"))
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
