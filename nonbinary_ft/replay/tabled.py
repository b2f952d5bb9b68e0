"""A Ray Tune trainable that reports what a table recorded instead of training.

With it, Ray Tune's own controller runs a strategy on a table: the reference the replay's
simulator is checked against (the same searcher and scheduler must make the same decisions
in both), and a way to rehearse a sweep's orchestration on recorded curves.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from nonbinary_ft.history.table import read_table
from nonbinary_ft.search.policy import settings_of

__all__ = ["table_trainable"]


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
