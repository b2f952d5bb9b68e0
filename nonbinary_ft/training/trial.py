"""One fine-tuning run (a trial) with one point of the non-binary space. Knows nothing of Ray.

``run_trial`` is what ``nbft finetune`` runs and what the sweep wraps as a Ray Tune
trainable: it takes the experiment config (with the trial's settings), a reporter called once
per epoch with the epoch's :class:`~nonbinary_ft.results.schema.EpochRecord` and the directory
of that epoch's checkpoint, and resumes from such a directory when given one. Checkpoints hold
only tensors and plain values, so they load with ``torch.load(weights_only=True)``: a
checkpoint from a shared bucket cannot run code.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.data import DataSplits, build_datasets, build_loaders, create_transforms
from nonbinary_ft.errors import ModelError
from nonbinary_ft.models.layers import LayerMap, LayerPlan, build_layer_map, plan_layers
from nonbinary_ft.models.loading import create_backbone
from nonbinary_ft.models.surgery import reinit_top_layers
from nonbinary_ft.paths import check_writable_folder
from nonbinary_ft.regularization import L2SPRegulariser
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.training.device import resolve_device
from nonbinary_ft.training.loop import Precision, evaluate, train_one_epoch
from nonbinary_ft.training.optim import build_param_groups, create_optimizer, create_scheduler
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "CHECKPOINT_FILE",
    "PreparedModel",
    "Reporter",
    "TrialOutcome",
    "load_checkpoint",
    "prepare_data",
    "prepare_model",
    "run_trial",
    "trained_model",
]

logger = logging.getLogger(__name__)

Reporter = Callable[[EpochRecord, Path | None], None]
"""Called once per epoch with its record and the directory holding that epoch's checkpoint
(None when the epoch diverged: there is nothing worth resuming from)."""

CHECKPOINT_FILE = "state.pt"


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended: ``completed`` or ``diverged``, with every epoch's record."""

    status: TrialStatus
    history: tuple[EpochRecord, ...]

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy of the last epoch (None unless the trial completed)."""
        return self.history[-1].test_accuracy if self.history else None

    @property
    def best_val_accuracy(self) -> float:
        """The best validation accuracy over the epochs (0 when none was measured)."""
        return max((e.val_accuracy or 0.0 for e in self.history), default=0.0)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Deterministic where torch allows; warn_only keeps ops without a deterministic kernel.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _rng_states() -> dict[str, Any]:
    # timm's random crops draw from Python's `random`, other augmentations from torch. Only
    # tensors and plain values, so that the checkpoint loads with weights_only=True.
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))


def prepare_data(config: ExperimentConfig, model: torch.nn.Module) -> DataSplits:
    """The target's splits, with the model's own transforms (mean, std, input size).

    Raises:
        DataError: the data set is missing, empty or unreadable.
    """
    train_tf, eval_tf = create_transforms(config.data, model, config.model.image_size)
    return build_datasets(config.data, train_tf, eval_tf)


@dataclass(frozen=True)
class PreparedModel:
    """A loaded model after surgery, with its layer map and this trial's layer plan."""

    model: torch.nn.Module
    layer_map: LayerMap
    plan: LayerPlan
    reinitialised: tuple[str, ...]


def prepare_model(config: ExperimentConfig, num_classes: int) -> PreparedModel:
    """Load the backbone, size its head, check the settings and re-initialise the top k layers.

    Raises:
        ConfigError: unknown model, or settings out of range for its layer count.
        ModelError: the weights cannot be loaded.
    """
    model = create_backbone(config.model, num_classes)
    layer_map = build_layer_map(model, config.model.name)
    plan = plan_layers(layer_map, config.settings)
    reinitialised = reinit_top_layers(model, layer_map, plan, seed=config.train.seed)
    return PreparedModel(model, layer_map, plan, tuple(reinitialised))


def _save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / (CHECKPOINT_FILE + ".partial")
    torch.save(state, partial)
    # A rename is atomic: a process killed mid-save never leaves a torn checkpoint.
    partial.replace(directory / CHECKPOINT_FILE)
    return directory


def load_checkpoint(directory: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A trial checkpoint, loaded without running any code it may carry.

    Raises:
        ModelError: the folder holds no checkpoint, or one that is not a trial's tensors
            and plain values (the error names the file).
    """
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelError(
            f"{path}: no trial checkpoint there (expected the {CHECKPOINT_FILE} that a trial "
            "writes into its checkpoint folder)"
        )
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises pickle's, zip's and its own errors alike
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelError(
            f"{path}: not a trial checkpoint that loads safely ({type(error).__name__}"
            f"{': ' + first[:200] if first else ''})"
        ) from None


def trained_model(
    config: ExperimentConfig,
    num_classes: int,
    checkpoint_dir: str | Path,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """A trial's model from its checkpoint, in eval mode: the architecture only is built (the
    weights come from the checkpoint, not from the hub again).

    Raises:
        ModelError: the checkpoint is missing or does not load safely.
    """
    model = prepare_model(config.architecture_only(), num_classes).model
    model.load_state_dict(load_checkpoint(checkpoint_dir, device)["model"])
    return model.to(device).eval()


@dataclass
class _Training:
    """Everything one trial trains with, built once and restored on resume."""

    model: torch.nn.Module
    regulariser: L2SPRegulariser
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    precision: Precision
    loaders: tuple[Any, Any, Any]
    history: list[EpochRecord] = field(default_factory=list)
    next_epoch: int = 1

    def state(self, epoch: int) -> dict[str, Any]:
        """The checkpoint after ``epoch``: tensors and plain values only."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_states(),
            "history": [record.to_report() for record in self.history],
            "epoch": epoch,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`state`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_states(state["rng"])
        self.history = [EpochRecord.from_report(row) for row in state["history"]]
        self.next_epoch = state["epoch"] + 1


def _build(config: ExperimentConfig, data: DataSplits, device: torch.device) -> _Training:
    """Model after surgery, regulariser (w0 snapshotted here), optimiser, schedule, loaders."""
    train_cfg = config.train
    prepared = prepare_model(config, len(data.classes))
    model, layer_map, plan = prepared.model, prepared.layer_map, prepared.plan
    precision = Precision.for_device(device, train_cfg.amp, train_cfg.channels_last)
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    # Built on the device, after loading and re-initialising: this snapshots w0 for L2-SP.
    regulariser = L2SPRegulariser(
        model,
        layer_map,
        plan,
        config.settings.alpha,
        config.settings.beta,
        decay_norm_and_bias=train_cfg.decay_norm_and_bias,
    )
    loaders = build_loaders(data, config.data, train_cfg.seed)
    optimizer = create_optimizer(
        build_param_groups(model, layer_map, plan, config.settings), train_cfg
    )
    scheduler = create_scheduler(optimizer, train_cfg, steps_per_epoch=len(loaders[0]))
    scaler = torch.amp.GradScaler(device.type, enabled=precision.amp)
    return _Training(model, regulariser, optimizer, scheduler, scaler, precision, loaders)


def _train_epoch(run: _Training, config: ExperimentConfig, epoch: int) -> EpochRecord:
    """Train one epoch, then evaluate on validation (and on test after the last epoch, or
    after every epoch with ``train.test_every_epoch``)."""
    train_loader, val_loader, test_loader = run.loaders
    # Each epoch's data order depends on (seed, epoch) only, so a resumed trial sees exactly
    # the batches the uninterrupted one would have seen.
    if train_loader.generator is not None:
        train_loader.generator.manual_seed(config.train.seed * 100_003 + epoch)
    # The LRs this epoch started at (after its last step, a cosine schedule is at 0).
    lrs = {group["name"]: group["lr"] for group in run.optimizer.param_groups}
    started = time.perf_counter()
    train = train_one_epoch(
        run.model,
        train_loader,
        run.optimizer,
        run.scheduler,
        run.regulariser,
        run.precision,
        run.scaler,
        config.train.label_smoothing,
        config.train.grad_clip,
    )
    trained = time.perf_counter() - started
    measured = dict(
        epoch=epoch,
        train_loss=train.loss,
        train_accuracy=train.accuracy,
        **run.regulariser.values(run.model),
        images_per_s=train.samples / trained if trained > 0 else 0.0,
        lrs=lrs,
    )
    if train.diverged:
        return EpochRecord(
            **measured, epoch_time_s=trained, val_accuracy=0.0, status=TrialStatus.DIVERGED
        )
    val = evaluate(run.model, val_loader, run.precision)
    # What an epoch costs a sweep: training and the validation pass that judges it.
    measured["epoch_time_s"] = time.perf_counter() - started
    last = epoch == config.train.epochs
    if not (last or config.train.test_every_epoch):
        return EpochRecord(**measured, val_loss=val.loss, val_accuracy=val.accuracy)
    test = evaluate(run.model, test_loader, run.precision)
    return EpochRecord(
        **measured,
        val_loss=val.loss,
        val_accuracy=val.accuracy,
        test_loss=test.loss,
        test_accuracy=test.accuracy,
        status=TrialStatus.COMPLETED if last else TrialStatus.RUNNING,
    )


def _writable_folder(folder: Path) -> Path:
    """``folder``, made if needed, before any epoch: an epoch is never trained to be lost.

    Raises:
        ConfigError: a file is in its way, or it cannot be written.
    """
    check_writable_folder(folder, "the run folder (--out)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_trial(
    config: ExperimentConfig,
    report: Reporter,
    workdir: str | Path,
    resume_from: str | Path | None = None,
    data: DataSplits | None = None,
) -> TrialOutcome:
    """Fine-tune once with ``config.settings`` and report every epoch.

    Args:
        config: the experiment, with this trial's settings.
        report: called after every epoch with its record and the checkpoint directory.
        workdir: where this trial writes its checkpoint (``workdir/checkpoint``).
        resume_from: a checkpoint directory written by an earlier run of the same trial.
        data: already-built splits (a sweep builds them once); default: built here.

    Raises:
        ConfigError, ModelError, DataError: bad input, before any training step.
    """
    _seed_everything(config.train.seed)
    device = resolve_device(config.train.device)
    checkpoint_dir = _writable_folder(Path(workdir)) / "checkpoint"
    # Read before anything is built: a bad resume folder fails in a second, not a minute.
    state = load_checkpoint(resume_from, device) if resume_from is not None else None
    if data is None:
        data = prepare_data(config, create_backbone(config.model.architecture_only(), None))
    run = _build(config, data, device)
    if state is not None:
        run.restore(state)
        logger.info("resumed from %s at epoch %d", resume_from, run.next_epoch)
    for epoch in range(run.next_epoch, config.train.epochs + 1):
        record = _train_epoch(run, config, epoch)
        run.history.append(record)
        if record.status == TrialStatus.DIVERGED:
            logger.warning("loss became non-finite at epoch %d: trial diverged", epoch)
            report(record, None)
            break
        _save_checkpoint(checkpoint_dir, run.state(epoch))
        report(record, checkpoint_dir)
    ended = run.history[-1].status if run.history else TrialStatus.COMPLETED
    return TrialOutcome(ended, tuple(run.history))
