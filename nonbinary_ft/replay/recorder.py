"""The collection's Ray Tune callback: each finished grid point written to disk at once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from nonbinary_ft.results.io import write_json
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.search.policy import settings_of
from nonbinary_ft.tuning.final import SEED_KEY

__all__ = ["PointRecorder"]

logger = logging.getLogger(__name__)


class PointRecorder(Callback):
    """Keeps every epoch a run reports and writes ``<folder>/<point>.json`` when it ends
    (``<point>-s<seed>.json`` for a seed other than the task's own).

    Args:
        folder: where the runs go.
        point_key: the trial config's key holding the point's index.
        total: runs in this collection (for the progress line).
        base_seed: the task's training seed (a run's config carries its own under
            :data:`~nonbinary_ft.tuning.final.SEED_KEY`).
    """

    def __init__(self, folder: Path, point_key: str, total: int, base_seed: int = 0) -> None:
        self.folder = folder
        self.point_key = point_key
        self.total = total
        self.base_seed = base_seed
        self.finished = 0
        self.started = time.monotonic()
        self._history: dict[str, dict[int, dict[str, Any]]] = {}

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        """Keep the epoch (a retried epoch replaces the earlier report)."""
        record = EpochRecord.from_report(result)
        self._history.setdefault(trial.trial_id, {})[record.epoch] = record.to_report()

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Write the point: its settings and its epochs, in order."""
        epochs = self._history.pop(trial.trial_id, {})
        point = int(trial.config[self.point_key])
        seed = int(trial.config.get(SEED_KEY, self.base_seed)) - self.base_seed
        document = {
            "settings": settings_of(trial.config),
            "history": [epochs[e] for e in sorted(epochs)],
        }
        name = str(point) if seed == 0 else f"{point}-s{seed}"
        write_json(self.folder / f"{name}.json", document)
        self.finished += 1
        last = document["history"][-1] if document["history"] else {}
        logger.info(
            "point %d done (%d/%d, val %.3f, %.0f s so far)",
            point,
            self.finished,
            self.total,
            last.get("val_accuracy") or 0.0,
            time.monotonic() - self.started,
        )

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Leave a failed point out: the next collection retries it."""
        self._history.pop(trial.trial_id, None)
        logger.warning("point %s failed: %s", trial.config.get(self.point_key), trial.error_file)
