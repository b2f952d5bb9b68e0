"""Shared fixtures of the analysis tests: a tiny checkpoint and a sweep config on generated data."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import timm
import torch

from nonbinary_ft.config import ExperimentConfig

MakeConfig = Callable[..., ExperimentConfig]


def save_checkpoint(path: Path, seed: int = 1, num_classes: int = 5) -> Path:
    """A test_resnet state dict with a 5-class 'source' head, seeded."""
    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes)
    torch.save(model.state_dict(), path)
    return path


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def write_checkpoint() -> Callable[..., Path]:
    """:func:`save_checkpoint`, for tests that rewrite a checkpoint."""
    return save_checkpoint


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A tiny pre-trained-looking checkpoint (random weights, a 5-class source head)."""
    return save_checkpoint(tmp_path / "source.pt")


@pytest.fixture
def make_config(tmp_path: Path, checkpoint: Path) -> MakeConfig:
    """Build a sweep config on 3 generated classes; keyword patches merge into the sections."""

    base = {
        "name": "tiny",
        "model": {
            "name": "test_resnet",
            "pretrained": "checkpoint",
            "checkpoint": str(checkpoint),
            "image_size": 32,
        },
        "data": {
            "kind": "synthetic",
            "batch_size": 16,
            "num_workers": 0,
            "synthetic": {"num_classes": 3, "samples_per_class": 20, "image_size": 32},
        },
        "train": {"epochs": 1, "warmup_epochs": 0, "device": "cpu"},
        "analysis": {
            "cache_dir": str(tmp_path / "cache"),
            "probe": {"max_iter": 50, "weight_decays": [0.1, 0.001]},
            "scratch": {"epochs": 1},
        },
    }

    def make(**patch: Any) -> ExperimentConfig:
        return ExperimentConfig.model_validate(_merge(base, patch))

    return make


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core machine: a second thread only adds contention.

    Module-scoped, so that the thread count is restored before tests of other packages.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
