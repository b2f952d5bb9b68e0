"""Trained models in MLflow: logged on their run in the PyTorch flavour, and registered.

A stage-3 run of the recommended settings logs its model as MLflow's PyTorch examples do: a
signature and an input example (a batch of normalised test images), plus what a user needs
to feed it (``metadata``: the normalisation's mean and std, the input size, the class names),
so that ``mlflow.pyfunc.load_model(uri).predict(images)`` returns the class logits. The
best seed's model can then be registered in the Model Registry, its version tagged with the
settings, the sweep's parent run and the test accuracy.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MODEL_NAME", "RegisteredModel", "log_model", "register_model"]

MODEL_NAME = "model"
"""The logged model's name on its run."""


@dataclass(frozen=True)
class RegisteredModel:
    """A model version in the registry: ``models:/<name>/<version>``."""

    name: str
    version: str
    source: str

    @property
    def uri(self) -> str:
        """The URI ``mlflow.pyfunc.load_model`` takes."""
        return f"models:/{self.name}/{self.version}"


@contextlib.contextmanager
def _tracking(tracking_uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``tracking_uri`` for a while (it is process-global)."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def _requirements() -> list[str]:
    """What loading the model needs, pinned to what trained it (no slow inference)."""
    from importlib import metadata

    return [f"{name}=={metadata.version(name)}" for name in ("torch", "timm", "numpy")]


def log_model(
    tracking_uri: str,
    run_id: str,
    model: Any,
    example: np.ndarray,
    metadata: Mapping[str, Any],
) -> str:
    """Log ``model`` (a ``torch.nn.Module`` in eval mode) on run ``run_id``.

    Args:
        tracking_uri: the MLflow tracking URI.
        run_id: the run it belongs to (a stage-3 run).
        model: the trained model.
        example: a small batch of normalised images, NCHW float32.
        metadata: the preprocessing (mean, std, input size, class names) and the settings.

    Returns:
        The logged model's URI.
    """
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    with _tracking(tracking_uri), mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            model,
            name=MODEL_NAME,
            signature=signature,
            input_example=example,
            metadata=dict(metadata),
            pip_requirements=_requirements(),
        )
    return str(info.model_uri)


def register_model(
    tracking_uri: str,
    model_uri: str,
    name: str,
    tags: Mapping[str, Any],
    alias: str | None = None,
) -> RegisteredModel:
    """Register ``model_uri`` under ``name`` (a new version), tag the version, and point
    ``alias`` at it (``models:/<name>@<alias>`` then loads the newest recommendation)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    with _tracking(tracking_uri):
        version = mlflow.register_model(model_uri, name)
    client = MlflowClient(tracking_uri)
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        client.set_model_version_tag(name, version.version, key, text)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return RegisteredModel(name, str(version.version), model_uri)
