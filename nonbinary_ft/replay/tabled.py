"""A Ray Tune trainable that reports what a table recorded instead of training.

With it, Ray Tune's own controller runs a strategy on a table: the reference the replay's
simulator is checked against (the same searcher and scheduler must make the same decisions
in both). :func:`rehearsed_records` serves a whole sweep the same way (``nbft``'s trainable
with ``TrainableOptions.rehearse_table``): any settings get a recorded curve, so a sweep of
thousands of trials costs only its orchestration (what ``benchmarks/sweep_scale`` measures).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ray import tune

from nonbinary_ft.history.table import TableError, TaskTable, read_table, settings_key
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.search.policy import settings_of
from nonbinary_ft.vocabulary import TrialStatus

__all__ = ["table_trainable", "rehearsed_records"]


def table_trainable(config: dict[str, Any], folder: str) -> None:
    """Report the table's epochs for the point ``config`` trains (bind ``folder`` with
    ``tune.with_parameters``); the last epoch says ``done``, as a real trial's does."""
    table = read_table(folder)
    point = table.index_of(settings_of(config))
    last = table.epochs_of(point)
    for epoch in range(1, last + 1):
        completed = epoch == table.epochs
        tune.report(
            {
                "epoch": epoch,
                "val_accuracy": float(table.val[point, epoch - 1]),
                "test_accuracy": float(table.test[point, epoch - 1]),
                "epoch_time_s": float(table.epoch_s[point, epoch - 1]),
                "status": "running" if epoch < last else ("completed" if completed else "diverged"),
                "done": epoch == last,
            }
        )


def rehearsed_records(table: TaskTable, settings: dict[str, Any]) -> list[EpochRecord]:
    """The epochs a trial with ``settings`` reports in a rehearsal: the table's own point when
    the table holds it, else a point picked by a hash of the settings (the same settings
    always get the same curve; a rehearsal measures orchestration, not search quality)."""
    try:
        point = table.index_of(settings)
    except TableError:
        digest = hashlib.sha256(settings_key(settings).encode()).digest()
        point = int.from_bytes(digest[:8], "big") % len(table.points)
    last = table.epochs_of(point)
    records = []
    for epoch in range(1, last + 1):
        ended = TrialStatus.COMPLETED if epoch == table.epochs else TrialStatus.DIVERGED
        records.append(
            EpochRecord(
                epoch=epoch,
                val_accuracy=float(table.val[point, epoch - 1]),
                test_accuracy=float(table.test[point, epoch - 1]) if epoch == last else None,
                epoch_time_s=float(table.epoch_s[point, epoch - 1]),
                status=TrialStatus.RUNNING if epoch < last else ended,
            )
        )
    return records
