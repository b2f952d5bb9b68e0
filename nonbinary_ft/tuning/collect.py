"""From Ray Tune's ``ResultGrid`` straight to the results types: one :class:`TrialResult` each.

A trial's history is every result it reported (Ray's metrics dataframe, or the trial folder's
``result.json``), one :class:`EpochRecord` per epoch (the last report of an epoch wins: a
retried or resumed epoch replaces the earlier). Its status combines Ray's state with what it
reported (:func:`~nonbinary_ft.tuning.status.sweep_status`). Stage 3's test-set softmax is read
from each final run's last checkpoint, for the seed ensemble.
"""

from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nonbinary_ft.results.schema import EpochRecord, TrialResult, finite
from nonbinary_ft.search.policy import settings_of
from nonbinary_ft.tuning.final import RANK_KEY, SEED_KEY, Probabilities
from nonbinary_ft.tuning.status import sweep_status
from nonbinary_ft.tuning.trainable import LABELS_FILE, PROBS_FILE
from nonbinary_ft.vocabulary import Stage

__all__ = ["trial_results", "final_probabilities"]

logger = logging.getLogger(__name__)


def _reported(result: Any) -> list[dict[str, Any]]:
    """Every result a trial reported: Ray's dataframe, else the trial folder's result.json."""
    frame = getattr(result, "metrics_dataframe", None)
    if frame is not None and len(frame):
        return [dict(row) for row in frame.to_dict(orient="records")]
    path = Path(str(getattr(result, "path", "") or "")) / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _history(rows: Iterable[Mapping[str, Any]]) -> tuple[EpochRecord, ...]:
    by_epoch: dict[int, EpochRecord] = {}
    for row in rows:
        epoch = finite(row.get("epoch"))
        if epoch is not None and epoch >= 1:
            by_epoch[int(epoch)] = EpochRecord.from_report(row)
    return tuple(by_epoch[epoch] for epoch in sorted(by_epoch))


def _span(rows: list[dict[str, Any]], origin: float) -> tuple[float | None, float | None]:
    """When the trial started and last reported, in seconds since ``origin``."""
    starts = [t for t in (finite(row.get("started_at")) for row in rows) if t is not None]
    ends = [t for t in (finite(row.get("reported_at")) for row in rows) if t is not None]
    begin = round(min(starts) - origin, 3) if starts else None
    end = round(max(ends) - origin, 3) if ends else None
    return begin, end


def _int(value: Any) -> int | None:
    # numbers.Real also takes numpy's scalars (Ray's metrics dataframe holds those).
    return int(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def _trial(result: Any, stage: Stage, origin: float) -> TrialResult:
    metrics = result.metrics or {}
    config = result.config or {}
    trial_id = str(metrics.get("trial_id") or Path(str(result.path)).name)
    try:
        rows = _reported(result)
    except (OSError, ValueError) as error:
        logger.warning("could not read the results of trial %s: %s", trial_id, error)
        rows = []
    history = _history(rows)
    begin, end = _span(rows, origin)
    seen = [e.val_accuracy for e in history if e.val_accuracy is not None]
    time_s = sum(e.epoch_time_s or 0.0 for e in history)
    return TrialResult(
        trial_id=trial_id,
        settings=settings_of(config),
        status=sweep_status(
            "ERROR" if result.error is not None else "TERMINATED", metrics.get("status")
        ),
        stage=stage,
        prune_reason=metrics.get("prune_reason"),
        history=history,
        val_accuracy=finite(metrics.get("val_accuracy")),
        best_val_accuracy=max(seen) if seen else finite(metrics.get("val_accuracy")),
        test_accuracy=finite(metrics.get("test_accuracy")),
        time_s=round(end - begin, 3) if begin is not None and end is not None else time_s,
        started_at=begin,
        ended_at=end,
        node_id=metrics.get("node_id"),
        seed=_int(config.get(SEED_KEY)),
        rank=_int(config.get(RANK_KEY)),
    )


def trial_results(grid: Iterable[Any], stage: Stage, origin: float) -> list[TrialResult]:
    """The trials of one stage, in trial-id order.

    Args:
        grid: the stage's ``ResultGrid`` (or any iterable of Ray ``Result`` objects).
        stage: which stage it is.
        origin: when the sweep started (seconds since the epoch); trial times count from it.
    """
    return sorted((_trial(result, stage, origin) for result in grid), key=lambda t: t.trial_id)


def _probabilities(result: Any) -> Probabilities | None:
    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as directory:
        probs, labels = Path(directory) / PROBS_FILE, Path(directory) / LABELS_FILE
        if not (probs.is_file() and labels.is_file()):
            return None
        return np.load(probs), np.load(labels)


def final_probabilities(grid: Iterable[Any]) -> dict[str, Probabilities | None]:
    """Each final run's test-set softmax and labels, by trial id (None: not saved)."""
    return {
        str(result.metrics["trial_id"]): _probabilities(result)
        for result in grid
        if result.metrics and "trial_id" in result.metrics
    }
