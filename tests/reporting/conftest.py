"""Fixtures of the reporting tests: the tiny sweep of sweep_fixtures, in memory and saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_fixtures import make_results

from nonbinary_ft.results import SweepResults, save_results


@pytest.fixture
def results() -> SweepResults:
    """The finished tiny sweep."""
    return make_results()


@pytest.fixture
def sweep_folder(tmp_path: Path, results: SweepResults) -> Path:
    """The tiny sweep saved as a run folder."""
    folder = tmp_path / "tiny-sweep"
    save_results(folder, results)
    return folder
