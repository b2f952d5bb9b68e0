"""Stage 3's recommended models into MLflow: each seed's on its run, the best one registered.

Trials never talk to MLflow, so the driver does it once stage 3 is over: for every completed
final run of the recommended settings (rank 1) it rebuilds the architecture, loads the
weights from the run's last checkpoint (``weights_only``), and logs the model with the
preprocessing it needs (:func:`~nonbinary_ft.tracking.models.log_model`). With
``sweep.mlflow.register_as`` the seed with the best test accuracy is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.tracking.models import RegisteredModel, log_model, register_model
from nonbinary_ft.tuning.final import RANK_KEY, SEED_KEY
from nonbinary_ft.tuning.trainable import trial_config_for

__all__ = ["EXAMPLE_IMAGES", "ModelExport", "export_final_models"]

logger = logging.getLogger(__name__)

EXAMPLE_IMAGES = 4
"""Test images in each logged model's input example."""


@dataclass(frozen=True)
class ModelExport:
    """The recommended settings' models in MLflow.

    Attributes:
        logged: trial id -> the logged model's URI (one per seed).
        best_trial: the seed's trial with the best test accuracy.
        registered: its registry version, when ``register_as`` was set.
    """

    logged: dict[str, str]
    best_trial: str | None
    registered: RegisteredModel | None = None

    @property
    def uri(self) -> str | None:
        """What to load: the registered version, else the best seed's logged model."""
        if self.registered is not None:
            return self.registered.uri
        return self.logged.get(self.best_trial or "")


def _model_and_example(
    config: ExperimentConfig, checkpoint_dir: Path
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The trained model, a batch of its normalised test images, and its preprocessing."""
    import torch

    from nonbinary_ft.data import build_datasets, create_transforms, model_data_config, read_samples
    from nonbinary_ft.training.trial import trained_model

    classes = read_samples(config.data).classes
    model = trained_model(config, len(classes), checkpoint_dir)
    train_tf, eval_tf = create_transforms(config.data, model, config.model.image_size)
    test = build_datasets(config.data, train_tf, eval_tf).test
    count = min(EXAMPLE_IMAGES, len(test))
    example = torch.stack([test[i][0] for i in range(count)]).numpy().astype(np.float32)
    data_config = model_data_config(model, config.model.image_size)
    preprocessing = {
        "mean": list(data_config["mean"]),
        "std": list(data_config["std"]),
        "input_size": list(data_config["input_size"]),
        "class_names": list(classes),
        "input": "NCHW float32 images in [0, 1], normalised with mean and std",
        "output": "class logits (softmax for probabilities), in class_names order",
    }
    return model, example, preprocessing


def export_final_models(
    results: Iterable[Any],
    config: ExperimentConfig,
    tracking_uri: str,
    runs: Mapping[str, str],
    parent_run_id: str,
) -> ModelExport | None:
    """Log every completed rank-1 final run's model; register the best with ``register_as``.

    Args:
        results: stage 3's Ray ``Result`` objects.
        config: the sweep's experiment config.
        tracking_uri: the MLflow tracking URI.
        runs: stage 3's trial id -> MLflow run id.
        parent_run_id: the sweep's parent run (a tag of the registered version).

    Returns:
        What was logged, or None when no rank-1 run completed with a checkpoint.
    """
    logged: dict[str, str] = {}
    accuracy: dict[str, float] = {}
    settings: dict[str, Any] = {}
    for result in results:
        metrics, trial_config = result.metrics or {}, result.config or {}
        trial_id = str(metrics.get("trial_id"))
        if trial_config.get(RANK_KEY) != 1 or result.checkpoint is None or trial_id not in runs:
            continue
        if metrics.get("status") != "completed":
            continue
        trial = trial_config_for(config, trial_config)
        with result.checkpoint.as_directory() as directory:
            model, example, preprocessing = _model_and_example(trial, Path(directory))
        settings = trial.settings.model_dump()
        metadata = {**preprocessing, "settings": settings, "seed": trial_config.get(SEED_KEY)}
        logged[trial_id] = log_model(tracking_uri, runs[trial_id], model, example, metadata)
        accuracy[trial_id] = float(metrics.get("test_accuracy") or 0.0)
    if not logged:
        return None
    best = max(accuracy, key=lambda trial_id: (accuracy[trial_id], trial_id))
    registered = None
    name = config.sweep.mlflow.register_as
    if name:
        tags = {"settings": settings, "parent_run_id": parent_run_id,
                "test_accuracy": f"{accuracy[best]:.4f}", "sweep": config.name}  # fmt: skip
        alias = config.sweep.mlflow.alias
        registered = register_model(tracking_uri, logged[best], name, tags, alias)
        logger.info("registered %s (test accuracy %.4f)", registered.uri, accuracy[best])
    return ModelExport(logged, best, registered)
