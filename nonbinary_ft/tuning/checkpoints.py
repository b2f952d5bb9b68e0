"""How often Ray Tune snapshots a sweep, and which trial checkpoints a sweep keeps.

Ray Tune saves the whole experiment state (every trial's) in each snapshot, so a snapshot
costs time in proportion to the trial count. Two things would make that cost grow with the
square of the trial count, and both are avoided here:

- a fixed snapshot period: :func:`snapshot_period_s` grows the period with the planned trial
  count, so that snapshots take about the same share of the driver at any size;
- ``CheckpointConfig(num_to_keep=...)``: Ray forces a snapshot each time a trial has made that
  many checkpoints since the last one (so that the snapshot never names a deleted
  checkpoint), one snapshot per trial epoch with one kept. The sweep keeps every checkpoint
  in Ray's view instead, and :class:`CheckpointPruner` deletes, at each snapshot, a trial's
  checkpoints that neither of the last two snapshots names and that are older than what
  they name. Two, because on remote storage a snapshot is uploaded after the checkpoints
  it names: a driver killed during the upload resumes from the one before.

Forced snapshots also kept each trial's result files current in storage, which Ray uploads
only with a snapshot but reads back when a trial starts again; :class:`ResultFilesUploader`
keeps them current for a trial that starts again instead.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray.tune import Callback, Checkpoint
from ray.tune.result import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

__all__ = [
    "SNAPSHOT_PERIOD_S",
    "SNAPSHOT_S_PER_TRIAL",
    "snapshot_period_s",
    "CheckpointPruner",
    "ResultFilesUploader",
]

logger = logging.getLogger(__name__)

SNAPSHOT_PERIOD_S = 2.0
"""The shortest period between two snapshots (Ray's own default is at least 10 s).

A killed driver loses what happened after the last snapshot; a short period keeps that small
(trials that finished in the gap report their stored final result again without training)."""

SNAPSHOT_S_PER_TRIAL = 0.02
"""Seconds of snapshot period per planned trial, above :data:`SNAPSHOT_PERIOD_S`.

From ``benchmarks/sweep_scale``'s first run (a fixed 2 s period): 33 s of snapshots over a
510 s, 1,000-trial sweep, about 130 ms per snapshot or 0.13 ms per trial in it. A period of
20 ms per trial then keeps snapshots near 1 % of the driver's time at any size (20 s at
1,000 trials, 200 s at 10,000)."""


def snapshot_period_s(planned_trials: int) -> float:
    """Seconds between Ray Tune's experiment snapshots for a stage of ``planned_trials``."""
    return max(SNAPSHOT_PERIOD_S, SNAPSHOT_S_PER_TRIAL * planned_trials)


class CheckpointPruner(Callback):
    """Deletes each trial's checkpoints that no snapshot it could resume from names.

    A trial's newest checkpoint is never deleted (the last snapshot names it or an older
    one), so stage 3's test-set softmax and the exported model are always there; once the
    experiment has ended normally, it is the only one left.
    """

    SNAPSHOTS_KEPT = 2

    def __init__(self) -> None:
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._named: deque[dict[str, str]] = deque(maxlen=self.SNAPSHOTS_KEPT)
        self._named_newest = True  # the last snapshot names every trial's newest checkpoint

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Checkpoint,
                      **info: Any) -> None:  # fmt: skip
        self._checkpoints.setdefault(trial.trial_id, []).append(checkpoint)
        self._named_newest = False

    def get_state(self) -> dict | None:
        """Called by Ray while it writes a snapshot: note what it names, prune the rest."""
        self._snapshot_taken()
        return None  # nothing to restore: a resumed sweep prunes what it checkpoints anew

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """After Ray's final snapshot (written and uploaded by now) only it counts; an
        experiment that ended in an exception has none, and keeps what the last two name."""
        if self._named_newest:
            self._snapshot_taken()

    def _snapshot_taken(self) -> None:
        self._named_newest = True
        self._named.append({trial: kept[-1].path for trial, kept in self._checkpoints.items()})
        for trial, kept in self._checkpoints.items():
            oldest_named = min(
                (index for index, checkpoint in enumerate(kept)
                 if any(named.get(trial) == checkpoint.path for named in self._named)),
                default=len(kept) - 1,
            )  # fmt: skip
            for checkpoint in kept[:oldest_named]:
                _delete(checkpoint)
            del kept[:oldest_named]


class ResultFilesUploader(Callback):
    """Uploads a trial's result files to storage just before the trial starts again.

    The driver writes each trial's ``result.json`` and ``progress.csv`` in a staging folder
    that reaches storage with the next snapshot; when a trial starts again (retried after its
    worker or node died), Ray's JSON and CSV loggers first copy those files back from storage.
    Without this, a retried trial's files would lose the epochs it reported since the last
    snapshot. Only a trial that reported to this driver is uploaded: its staged files are then
    the newest (a resumed driver's first start of a trial reads what storage holds).

    It must come before Ray's loggers in the callbacks (Ray appends its own after the sweep's).
    """

    def __init__(self) -> None:
        self._reported: set[str] = set()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:  # fmt: skip
        self._reported.add(trial.trial_id)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self._reported:
            return
        for name in (EXPR_RESULT_FILE, EXPR_PROGRESS_FILE):
            staged = Path(trial.local_path, name)
            if staged.is_file():
                pyarrow.fs.copy_files(
                    str(staged),
                    Path(trial.storage.trial_fs_path, name).as_posix(),
                    destination_filesystem=trial.storage.storage_filesystem,
                )


def _delete(checkpoint: Checkpoint) -> None:
    try:
        checkpoint.filesystem.delete_dir(checkpoint.path)
    except FileNotFoundError:
        pass
    except OSError as error:  # a storage hiccup costs disk space, not the sweep
        logger.warning("could not delete the old checkpoint %s (%s)", checkpoint.path, error)
