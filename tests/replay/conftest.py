"""A small replay table made up in code: a full product grid, curves with a known best."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from nonbinary_ft.history.table import TaskEvidence, write_table
from nonbinary_ft.results import EpochRecord
from nonbinary_ft.vocabulary import TrialStatus
from tests.tiny import NUM_LAYERS, tiny_document

EPOCHS = 4
GRID = {
    "reinit_layers": [1, 2],
    "lr_high": [0.01, 0.1, 0.3],
    "low_layers": [0],
    "lr_low": [None],
    "l2sp_layers": [0, "all"],
    "alpha": [0.01],
    "beta": [0.0001],
    "lr_new": [None],
}


def final_accuracy(settings: dict) -> float:
    """Known by construction: best at k = 2, lr 0.1, L2-SP on all layers (0.9)."""
    score = 0.5 + 0.1 * (settings["reinit_layers"] == 2) + 0.2 * (settings["lr_high"] == 0.1)
    return score + 0.1 * (settings["l2sp_layers"] == "all")


def curve(settings: dict, diverge: bool, inverted: bool = False) -> list[EpochRecord]:
    final = 1.4 - final_accuracy(settings) if inverted else final_accuracy(settings)
    seconds = 1.0 + settings["reinit_layers"]  # more new layers, slower epochs
    records = []
    for epoch in range(1, EPOCHS + 1):
        if diverge and epoch == 2:
            records.append(
                EpochRecord(
                    epoch, val_accuracy=0.0, epoch_time_s=seconds, status=TrialStatus.DIVERGED
                )
            )
            break
        last = epoch == EPOCHS
        records.append(
            EpochRecord(
                epoch,
                val_accuracy=final - 0.1 * (EPOCHS - epoch),
                test_accuracy=final - 0.02 - 0.1 * (EPOCHS - epoch),
                epoch_time_s=seconds,
                status=TrialStatus.COMPLETED if last else TrialStatus.RUNNING,
            )
        )
    return records  # fmt: skip


def make_table(
    folder: Path,
    evidence: bool = True,
    skip: int | None = None,
    inverted: bool = False,
    name: str | None = None,
    model: dict | None = None,
) -> Path:
    """12 points x 4 epochs; the point k = 1, lr 0.3, plain L2 diverges at epoch 2.

    ``skip`` leaves out that point of the product: a grid with a hole. ``inverted`` ranks
    the points the other way round (the best is the worst), task 'inverted'. ``name`` and
    ``model`` set the task's name and its model section (its pre-trained source).
    """
    names = list(GRID)
    points = []
    for index, values in enumerate(itertools.product(*GRID.values())):
        if index == skip:
            continue
        settings = dict(zip(names, values, strict=True))
        diverge = settings["reinit_layers"] == 1 and settings["lr_high"] == 0.3
        diverge = diverge and settings["l2sp_layers"] == 0
        points.append((settings, curve(settings, diverge, inverted)))
    document = {
        "regime": {"label": "fits_well", "provisional": False, "gap": -0.3, "fisher": 2.0},
        "recommendation": {"settings": {"reinit_layers": 2, "lr_high": 0.01, "l2sp_layers": "all"}},
        "table1": {"gap": -0.3, "fisher": 2.0, "fixed_feature_accuracy": 0.8},
    }
    task_name = name or ("inverted" if inverted else "made-up")
    task = tiny_document(name=task_name, train={"epochs": EPOCHS}, model=model or {})
    return write_table(
        folder,
        task_name,
        NUM_LAYERS,
        EPOCHS,
        points,
        TaskEvidence(document, 1.0, 0.5, 0.5, (0.2, 0.3), (0.2, 0.3), (2.0, 2.0))
        if evidence
        else None,
        yaml.safe_dump(task),
    )


@pytest.fixture(scope="session")
def table_folder(tmp_path_factory) -> Path:
    """The made-up table, written once."""
    return make_table(tmp_path_factory.mktemp("table"))
