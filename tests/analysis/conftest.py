"""Shared fixtures of the analysis tests: a tiny checkpoint and a sweep config on generated data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import timm
import torch

from nonbinary_ft.config import ExperimentConfig
from tests.tiny import merge, tiny_document

MakeConfig = Callable[..., ExperimentConfig]


def save_checkpoint(path: Path, seed: int = 1, num_classes: int = 5) -> Path:
    """A test_resnet state dict with a 5-class 'source' head, seeded."""
    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes)
    torch.save(model.state_dict(), path)
    return path


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

    base = tiny_document(
        model={"pretrained": "checkpoint", "checkpoint": str(checkpoint)},
        analysis={
            "cache_dir": str(tmp_path / "cache"),
            "probe": {"max_iter": 50, "weight_decays": [0.1, 0.001]},
            "scratch": {"epochs": 1},
        },
    )

    def make(**patch: Any) -> ExperimentConfig:
        return ExperimentConfig.model_validate(merge(base, patch))

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
