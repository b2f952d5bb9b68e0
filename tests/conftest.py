"""Fixtures shared by every test package: the tiny experiment (:mod:`tests.tiny`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nonbinary_ft.config import ExperimentConfig
from tests.tiny import tiny_document


@pytest.fixture(autouse=True, scope="module")
def own_module_history_store(tmp_path_factory):
    """A module's shared fixtures (a sweep run once for several tests) keep finished sweeps
    in the module's own store, never the user's: pytest sets up a module-scoped fixture
    before any function-scoped one, so the per-test store below comes too late for them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBFT_HISTORY_DIR", str(tmp_path_factory.mktemp("nbft-history")))
        yield


@pytest.fixture(autouse=True)
def own_history_store(tmp_path_factory, monkeypatch):
    """Every test keeps finished sweeps in a store of its own, never the user's: a sweep of
    one test must not warm-start another's (subprocesses inherit the variable)."""
    monkeypatch.setenv("NBFT_HISTORY_DIR", str(tmp_path_factory.mktemp("nbft-history")))


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., ExperimentConfig]:
    """``tiny_config(**patch)``: the tiny experiment, validated, with sections patched."""

    def make(**patch: Any) -> ExperimentConfig:
        return ExperimentConfig.model_validate(tiny_document(**patch))

    return make
