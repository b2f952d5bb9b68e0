"""Shared fixtures of the sweep tests: a tiny experiment, and a two-node Ray cluster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from nonbinary_ft.config import ExperimentConfig

# test_resnet has L = 6 layers; 3 generated classes of 32 px images keep a trial at seconds.
TINY: dict[str, Any] = {
    "name": "tiny",
    "model": {"name": "test_resnet", "pretrained": "none", "image_size": 32},
    "data": {
        "kind": "synthetic",
        "batch_size": 16,
        "num_workers": 0,
        "synthetic": {"num_classes": 3, "samples_per_class": 16, "image_size": 32},
    },
    "train": {"epochs": 2, "warmup_epochs": 0, "device": "cpu"},
}


def tiny_document(tmp_path: Path, name: str = "tiny", **sweep: Any) -> dict[str, Any]:
    """The tiny experiment as a sweep-file mapping, stored under ``tmp_path``."""
    document = copy.deepcopy(TINY)
    document["name"] = name
    sweep.setdefault("storage", {"path": str(tmp_path / "runs")})
    # Stage 1 runs in every sweep without a test policy: keep its scratch baseline short.
    document["analysis"] = {"cache_dir": str(tmp_path / "cache"), "scratch": {"epochs": 1}}
    document["sweep"] = sweep
    return document


def tiny_config(tmp_path: Path, name: str = "tiny", **sweep: Any) -> ExperimentConfig:
    """The tiny experiment with a sweep section (storage and MLflow under ``tmp_path``)."""
    return ExperimentConfig.model_validate(tiny_document(tmp_path, name, **sweep))


@pytest.fixture(scope="session")
def make_config():
    """``make_config(tmp_path, name, **sweep)``: the tiny experiment with a sweep section."""
    return tiny_config


@pytest.fixture(scope="session")
def make_document():
    """``make_document(tmp_path, name, **sweep)``: the same as a sweep-file mapping."""
    return tiny_document


@pytest.fixture(scope="session")
def ray_cluster():
    """Two Ray nodes on loopback, 2 CPUs and 1 logical GPU each (no real GPU needed)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "num_gpus": 1, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=2, num_gpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()
