"""One fine-tuning run (a trial) with one point of the non-binary space. Knows nothing of Ray.

``run_trial`` is what ``nbft finetune`` runs and what the sweep wraps as a Ray Tune
trainable: it takes the experiment config (with the trial's settings), a reporting callback
called once per epoch with the metrics and the directory of that epoch's checkpoint, and
resumes from such a directory when given one.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.data import DataSplits, build_datasets, build_loaders, create_transforms
from nonbinary_ft.models.layers import LayerMap, LayerPlan, build_layer_map, plan_layers
from nonbinary_ft.models.loading import create_backbone
from nonbinary_ft.models.surgery import reinit_top_layers
from nonbinary_ft.regularization import L2SPRegulariser
from nonbinary_ft.training.loop import Precision, evaluate, train_one_epoch
from nonbinary_ft.training.optim import build_param_groups, create_optimizer, create_scheduler

__all__ = [
    "PreparedModel",
    "Reporter",
    "TrialResult",
    "prepare_data",
    "prepare_model",
    "run_trial",
]

logger = logging.getLogger(__name__)

Reporter = Callable[[dict[str, Any], Path | None], None]
"""Called once per epoch with the metrics and the directory holding that epoch's checkpoint."""

CHECKPOINT_FILE = "state.pt"


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial: its status, per-epoch history and final metrics."""

    status: Literal["completed", "diverged"]
    history: tuple[dict[str, Any], ...]
    test_accuracy: float | None
    best_val_accuracy: float
    final: dict[str, Any] = field(default_factory=dict)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Deterministic where torch allows; warn_only keeps ops without a deterministic kernel.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _rng_states() -> dict[str, Any]:
    # timm's random crops draw from Python's `random`, other augmentations from torch.
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])


def resolve_device(name: str) -> torch.device:
    """'auto' means the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def run_trial(
    config: ExperimentConfig,
    report: Reporter,
    workdir: str | Path,
    resume_from: str | Path | None = None,
    data: DataSplits | None = None,
) -> TrialResult:
    """Fine-tune once with ``config.settings`` and report every epoch.

    Args:
        config: the experiment, with this trial's settings.
        report: called after every epoch with the metrics and the checkpoint directory.
        workdir: where this trial writes its checkpoint (``workdir/checkpoint``).
        resume_from: a checkpoint directory written by an earlier run of the same trial.
        data: already-built splits (a sweep builds them once); default: built here.

    Raises:
        ConfigError, ModelError, DataError: bad input, before any training step.
    """
    _seed_everything(config.train.seed)
    device = resolve_device(config.train.device)
    train_cfg = config.train
    if data is None:
        probe = create_backbone(
            config.model.model_copy(update={"pretrained": "none", "checkpoint": None}), None
        )
        data = prepare_data(config, probe)
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
    train_loader, val_loader, test_loader = build_loaders(data, config.data, train_cfg.seed)
    optimizer = create_optimizer(
        build_param_groups(model, layer_map, plan, config.settings), train_cfg
    )
    scheduler = create_scheduler(optimizer, train_cfg, steps_per_epoch=len(train_loader))
    scaler = torch.amp.GradScaler(device.type, enabled=precision.amp)

    history: list[dict[str, Any]] = []
    start_epoch = 1
    if resume_from is not None:
        state = torch.load(
            Path(resume_from) / CHECKPOINT_FILE, map_location=device, weights_only=False
        )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_states(state["rng"])
        history = list(state["history"])
        start_epoch = state["epoch"] + 1
        logger.info("resumed from %s at epoch %d", resume_from, start_epoch)

    status: Literal["completed", "diverged"] = "completed"
    checkpoint_dir = Path(workdir) / "checkpoint"
    for epoch in range(start_epoch, train_cfg.epochs + 1):
        # Each epoch's data order depends on (seed, epoch) only, so a resumed trial sees
        # exactly the batches the uninterrupted one would have seen.
        if train_loader.generator is not None:
            train_loader.generator.manual_seed(train_cfg.seed * 100_003 + epoch)
        # The LRs this epoch started at (after its last step, a cosine schedule is at 0).
        epoch_lrs = {f"lr_{group['name']}": group["lr"] for group in optimizer.param_groups}
        started = time.perf_counter()
        train = train_one_epoch(
            model,
            train_loader,
            optimizer,
            scheduler,
            regulariser,
            precision,
            scaler,
            train_cfg.label_smoothing,
            train_cfg.grad_clip,
        )
        elapsed = time.perf_counter() - started
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train.loss,
            "train_accuracy": train.accuracy,
            **regulariser.values(model),
            **epoch_lrs,
            "epoch_time_s": elapsed,
            "images_per_s": train.samples / elapsed if elapsed > 0 else 0.0,
        }
        if train.diverged:
            status = "diverged"
            metrics.update(status=status, val_accuracy=0.0, done=True)
            history.append(metrics)
            report(metrics, None)
            logger.warning("loss became non-finite at epoch %d: trial diverged", epoch)
            break
        val = evaluate(model, val_loader, precision)
        metrics.update(val_loss=val.loss, val_accuracy=val.accuracy, status="running")
        last = epoch == train_cfg.epochs
        if last:
            test = evaluate(model, test_loader, precision)
            metrics.update(
                test_loss=test.loss, test_accuracy=test.accuracy, status="completed", done=True
            )
        history.append(metrics)
        _save_checkpoint(
            checkpoint_dir,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_states(),
                "history": history,
                "epoch": epoch,
            },
        )
        report(metrics, checkpoint_dir)

    final = history[-1] if history else {}
    return TrialResult(
        status=status,
        history=tuple(history),
        test_accuracy=final.get("test_accuracy"),
        best_val_accuracy=max((h.get("val_accuracy", 0.0) for h in history), default=0.0),
        final=final,
    )
