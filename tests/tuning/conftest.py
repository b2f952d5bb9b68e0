"""Shared fixtures of the sweep tests: a tiny experiment, and a two-node Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nonbinary_ft.config import ExperimentConfig
from tests.tiny import tiny_document


def sweep_document(tmp_path: Path, name: str = "tiny", **sweep: Any) -> dict[str, Any]:
    """The tiny experiment (2 epochs) with a sweep section, storing under ``tmp_path``."""
    sweep.setdefault("storage", {"path": str(tmp_path / "runs")})
    return tiny_document(
        name=name,
        data={"synthetic": {"samples_per_class": 16}},
        train={"epochs": 2},
        # Stage 1 runs in every sweep without a test policy: keep its scratch baseline short.
        analysis={"cache_dir": str(tmp_path / "cache"), "scratch": {"epochs": 1}},
        sweep=sweep,
    )


def sweep_config(tmp_path: Path, name: str = "tiny", **sweep: Any) -> ExperimentConfig:
    """The same, validated."""
    return ExperimentConfig.model_validate(sweep_document(tmp_path, name, **sweep))


@pytest.fixture(scope="session")
def make_config():
    """``make_config(tmp_path, name, **sweep)``: the tiny experiment with a sweep section."""
    return sweep_config


@pytest.fixture(scope="session")
def make_document():
    """``make_document(tmp_path, name, **sweep)``: the same as a sweep-file mapping."""
    return sweep_document


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
