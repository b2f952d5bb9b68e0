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

__all__ = ["PointRecorder"]

logger = logging.getLogger(__name__)


class PointRecorder(Callback):
    """Keeps every epoch a point reports and writes ``<folder>/<point>.json`` when it ends.

    Args:
        folder: where the points go.
        point_key: the trial config's key holding the point's index.
        total: points in this run (for the progress line).
    """

    def __init__(self, folder: Path, point_key: str, total: int) -> None:
        self.folder = folder
        self.point_key = point_key
        self.total = total
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
        document = {
            "settings": settings_of(trial.config),
            "history": [epochs[e] for e in sorted(epochs)],
        }
        write_json(self.folder / f"{point}.json", document)
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
