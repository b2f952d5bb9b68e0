"""An MLflow store in a temporary folder, created once (SQLite migrations take seconds)."""

from __future__ import annotations

import itertools

import pytest
from mlflow.tracking import MlflowClient

_names = itertools.count()


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """A SQLite tracking URI shared by the tracking tests (each uses its own experiment)."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the tables once
    return uri


@pytest.fixture
def artifact_root(tmp_path) -> str:
    """An artifact location for a new experiment (not the working directory's ./mlruns)."""
    return (tmp_path / "artifacts").as_uri()


@pytest.fixture
def fresh_name() -> str:
    """A unique experiment name for one test."""
    return f"exp-{next(_names)}"
