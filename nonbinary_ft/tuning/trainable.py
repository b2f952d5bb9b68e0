"""The Ray Tune trainable: one trial = one :func:`run_trial` with the trial's settings.

It reports every epoch through ``ray.tune.report`` with the epoch's checkpoint, resumes from
``ray.tune.get_checkpoint()`` when Ray restarts it (a dead worker retried under
``FailureConfig(max_failures)``, or a resumed sweep), and never trains an epoch twice: a
checkpoint also holds the metrics it was reported with, so a trial that had already finished
when the driver lost track of it reports that final result again instead of training.

In the final stage (stage 3) it also writes the test-set softmax of the trained model into the
last checkpoint, for the seed ensemble.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import tune

from nonbinary_ft.config import ExperimentConfig, with_settings
from nonbinary_ft.results.io import jsonable
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.search.policy import settings_of
from nonbinary_ft.tuning.final import SEED_KEY
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "LAST_METRICS_FILE",
    "PROBS_FILE",
    "LABELS_FILE",
    "TrainableOptions",
    "train_trial",
    "create_trainable",
    "trial_config_for",
]

logger = logging.getLogger(__name__)

LAST_METRICS_FILE = "nbft_metrics.json"
PROBS_FILE = "test_probs.npy"
LABELS_FILE = "test_labels.npy"

EpochHook = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class TrainableOptions:
    """How the trainable behaves beyond the trial's config.

    Attributes:
        final: stage 3: save the test-set softmax in the last checkpoint.
        epoch_hook: called in the worker after every report with (metrics, trial config);
            for fault-injection tests (a hook may kill its own worker).
        rehearse_table: a replay table's folder: report its recorded epochs instead of
            training (a rehearsal of the sweep's orchestration at any size).
    """

    final: bool = False
    epoch_hook: EpochHook | None = None
    rehearse_table: str | None = None


def trial_config_for(base: ExperimentConfig, trial_config: dict[str, Any]) -> ExperimentConfig:
    """The experiment config of one trial: the base with the trial's settings and seed.

    Raises:
        ConfigError: an unknown setting or an invalid value.
    """
    config = with_settings(base, settings_of(trial_config))
    if SEED_KEY in trial_config:
        train = config.train.model_copy(update={"seed": int(trial_config[SEED_KEY])})
        config = config.model_copy(update={"train": train})
    return config


class _TuneReporter:
    """The run_trial reporter that forwards each epoch to ``ray.tune.report``."""

    def __init__(
        self, extra: dict[str, Any], options: TrainableOptions, trial_config: dict[str, Any]
    ) -> None:
        self.extra = extra
        self.options = options
        self.trial_config = trial_config
        self.deferred: tuple[dict[str, Any], Path | None] | None = None

    def __call__(self, record: EpochRecord, checkpoint_dir: Path | None) -> None:
        payload = {**record.to_report(), **self.extra, "reported_at": time.time()}
        if self.options.final and record.status == TrialStatus.COMPLETED:
            # The last result waits for the test-set softmax (see train_trial).
            self.deferred = (payload, checkpoint_dir)
            return
        self.send(payload, checkpoint_dir)

    def send(self, payload: dict[str, Any], checkpoint_dir: Path | None) -> None:
        """Report to Ray Tune (with the checkpoint), then run the test hook if any."""
        if checkpoint_dir is not None:
            # Written last, so a checkpoint that says 'done' holds everything of the trial.
            (Path(checkpoint_dir) / LAST_METRICS_FILE).write_text(json.dumps(jsonable(payload)))
        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report(payload, checkpoint=checkpoint)
        if self.options.epoch_hook is not None:
            self.options.epoch_hook(payload, self.trial_config)


def _newest_stored_checkpoint() -> Any:
    """The trial's newest complete checkpoint in the sweep's storage, or None.

    It can be newer than the one Ray restores: the experiment state that names the latest
    checkpoint reaches remote storage after the checkpoints do, so a driver killed in between
    resumes from an older one, and finished epochs would train again. Complete means its
    weights and its metrics (written last) are both there.
    """
    import pyarrow.fs
    from ray.train._internal.session import get_storage  # Ray's developer API

    from nonbinary_ft.training.trial import CHECKPOINT_FILE

    try:
        storage = get_storage()
        filesystem, trial = storage.storage_filesystem, storage.trial_fs_path
        found = filesystem.get_file_info(pyarrow.fs.FileSelector(trial, allow_not_found=True))
    except Exception:  # no session (a direct call), or the storage does not answer
        return None
    folders = sorted(
        info.path for info in found
        if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith("checkpoint_")
    )  # fmt: skip
    for folder in reversed(folders):
        names = (LAST_METRICS_FILE, CHECKPOINT_FILE)
        files = filesystem.get_file_info([f"{folder}/{name}" for name in names])
        if all(info.type == pyarrow.fs.FileType.File for info in files):
            return tune.Checkpoint(folder, filesystem=filesystem)
    return None


def _restore_checkpoint(workdir: Path) -> tuple[Path | None, dict[str, Any] | None, bool]:
    """Copy this trial's latest checkpoint (if any) to a local folder: Ray's, or a newer one
    found in storage.

    Returns:
        The folder (None: start afresh), the metrics of its epoch, and whether that epoch's
        report never reached the driver (the checkpoint is newer than Ray's).
    """
    checkpoint, stored = tune.get_checkpoint(), _newest_stored_checkpoint()
    newer = stored is not None and (
        checkpoint is None or Path(stored.path).name > Path(checkpoint.path).name
    )
    if newer:
        logger.info("resuming from %s, newer than Ray's %s", stored.path, checkpoint)
        checkpoint = stored
    if checkpoint is None:
        return None, None, False
    local = workdir / "restored"
    checkpoint.to_directory(str(local))
    metrics_file = local / LAST_METRICS_FILE
    last = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return local, last, newer


def _save_test_predictions(config: ExperimentConfig, data: Any, checkpoint_dir: Path) -> None:
    """Write the softmax of the checkpointed model on the test split, and the labels."""
    import torch

    from nonbinary_ft.data import build_loaders
    from nonbinary_ft.training.device import resolve_device
    from nonbinary_ft.training.loop import Precision
    from nonbinary_ft.training.trial import trained_model

    device = resolve_device(config.train.device)
    model = trained_model(config, len(data.classes), checkpoint_dir, device)
    precision = Precision.for_device(device, config.train.amp, config.train.channels_last)
    _, _, test_loader = build_loaders(data, config.data, config.train.seed)
    probs, labels = [], []
    with torch.no_grad():
        for images, targets in test_loader:
            with precision.autocast():
                logits = model(precision.to_device(images))
            probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            labels.append(targets.numpy())
    np.save(checkpoint_dir / PROBS_FILE, np.concatenate(probs).astype(np.float32))
    np.save(checkpoint_dir / LABELS_FILE, np.concatenate(labels))


def _prepare_data(config: ExperimentConfig) -> Any:
    from nonbinary_ft.models.loading import create_backbone
    from nonbinary_ft.training.trial import prepare_data

    # Transforms need the model's data config only: a random-weight copy is enough.
    return prepare_data(config, create_backbone(config.model.architecture_only(), None))


def _node_id() -> str | None:
    """The Ray node this trial runs on (None outside a Ray worker)."""
    if not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def _rehearse(
    folder: str, trial_config: dict[str, Any], reporter: _TuneReporter, workdir: Path, after: int
) -> None:
    """Report a table's recorded epochs after epoch ``after``, each with a checkpoint of its
    metrics only (as a real trial's, less the weights) outside stage 3, which exports them."""
    from nonbinary_ft.history.table import read_table
    from nonbinary_ft.replay.tabled import rehearsed_records

    for record in rehearsed_records(read_table(folder), settings_of(trial_config))[after:]:
        checkpoint_dir = None if reporter.options.final else workdir / f"epoch-{record.epoch}"
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir()
        reporter(record, checkpoint_dir)
    if reporter.deferred is not None:
        reporter.send(*reporter.deferred)


def train_trial(
    trial_config: dict[str, Any],
    base_config: ExperimentConfig,
    options: TrainableOptions | None = None,
) -> None:
    """Run one trial under Ray Tune (the function trainable).

    Args:
        trial_config: the trial's settings (and, in stage 3, its seed and rank).
        base_config: the sweep file's experiment.
        options: stage-3 behaviour and test hooks.

    Raises:
        ConfigError, ModelError, DataError: bad input (the trial ends in error).
    """
    from nonbinary_ft.training.trial import run_trial

    options = options or TrainableOptions()
    config = trial_config_for(base_config, trial_config)
    workdir = Path(tempfile.mkdtemp(prefix="nbft-trial-"))
    try:
        restored, last, unseen = _restore_checkpoint(workdir)
        extra = {
            "node_id": _node_id(),
            "started_at": time.time(),
            "resumed_from": int(last["epoch"]) if last else 0,
        }
        reporter = _TuneReporter(extra, options, trial_config)
        if last is not None and (unseen or last.get("done")):
            # The driver stopped before it took in this epoch's report, or before its last
            # snapshot caught up: report the epoch again (not retrained), so that the trial's
            # results and MLflow run hold it.
            reporter.send({**last, **extra, "replayed": True}, restored)
            if last.get("done"):
                return
        if options.rehearse_table is not None:
            after = int(extra["resumed_from"])
            _rehearse(options.rehearse_table, trial_config, reporter, workdir, after)
            return
        data = _prepare_data(config)
        outcome = run_trial(config, reporter, workdir=workdir, resume_from=restored, data=data)
        if reporter.deferred is not None:
            payload, checkpoint_dir = reporter.deferred
            if checkpoint_dir is not None and outcome.status == TrialStatus.COMPLETED:
                _save_test_predictions(config, data, Path(checkpoint_dir))
            reporter.send(payload, checkpoint_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def create_trainable(
    base_config: ExperimentConfig,
    resources: dict[str, float],
    options: TrainableOptions | None = None,
) -> Any:
    """The trainable to hand to ``ray.tune.Tuner`` (or ``Tuner.restore``).

    Args:
        base_config: the sweep file's experiment (shipped once through Ray's object store).
        resources: per trial, e.g. ``{"CPU": 2, "GPU": 0.5}``.
        options: stage-3 behaviour and test hooks.
    """
    trainable = tune.with_parameters(train_trial, base_config=base_config, options=options)
    return tune.with_resources(
        trainable, {"cpu": resources.get("CPU", 1.0), "gpu": resources.get("GPU", 0.0)}
    )
