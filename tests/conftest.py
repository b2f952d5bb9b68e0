"""Fixtures shared by every test package: the tiny experiment (:mod:`tests.tiny`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nonbinary_ft.config import ExperimentConfig
from tests.tiny import tiny_document


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., ExperimentConfig]:
    """``tiny_config(**patch)``: the tiny experiment, validated, with sections patched."""

    def make(**patch: Any) -> ExperimentConfig:
        return ExperimentConfig.model_validate(tiny_document(**patch))

    return make
