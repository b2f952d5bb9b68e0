"""The trainable without a cluster: reports, checkpoints, replay of a finished trial, stage 3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ray import tune

from nonbinary_ft.tuning import trainable as module
from nonbinary_ft.tuning.trainable import (
    LABELS_FILE,
    LAST_METRICS_FILE,
    PROBS_FILE,
    TrainableOptions,
    train_trial,
)


@pytest.fixture
def fake_tune(monkeypatch, tmp_path):
    """Stand-ins for ray.tune.report / get_checkpoint that keep copies of the checkpoints."""
    reports: list[tuple[dict, Path | None]] = []
    state = {"checkpoint": None}
    count = iter(range(1000))

    def report(metrics, checkpoint=None):
        kept = None
        if checkpoint is not None:
            kept = tmp_path / f"reported-{next(count)}"
            shutil.copytree(checkpoint.path, kept)
        reports.append((dict(metrics), kept))

    monkeypatch.setattr(module.tune, "report", report)
    monkeypatch.setattr(module.tune, "get_checkpoint", lambda: state["checkpoint"])
    return reports, state


def test_reports_every_epoch_with_its_checkpoint(fake_tune, make_config, tmp_path):
    reports, _ = fake_tune
    config = make_config(tmp_path)
    train_trial({"lr_high": 0.01, "reinit_layers": 2}, config)
    assert [m["epoch"] for m, _ in reports] == [1, 2]
    assert reports[-1][0]["status"] == "completed" and reports[-1][0]["done"]
    assert all(m["resumed_from"] == 0 for m, _ in reports)
    stored = json.loads((reports[-1][1] / LAST_METRICS_FILE).read_text())
    assert stored["epoch"] == 2 and stored["done"]


def test_a_finished_trial_reports_again_without_training(fake_tune, make_config, tmp_path):
    reports, state = fake_tune
    config = make_config(tmp_path)
    train_trial({"lr_high": 0.01}, config)
    final_metrics, final_checkpoint = reports[-1]
    state["checkpoint"] = tune.Checkpoint.from_directory(str(final_checkpoint))
    reports.clear()
    train_trial({"lr_high": 0.01}, config)  # Ray restarts it from its last checkpoint
    ((metrics, _),) = reports
    assert metrics["replayed"] and metrics["epoch"] == 2
    assert metrics["val_accuracy"] == final_metrics["val_accuracy"]


def test_stage_three_saves_the_test_softmax_for_the_ensemble(fake_tune, make_config, tmp_path):
    reports, _ = fake_tune
    config = make_config(tmp_path)
    train_trial({"lr_high": 0.01, "train_seed": 3}, config, TrainableOptions(final=True))
    metrics, checkpoint = reports[-1]
    probs, labels = np.load(checkpoint / PROBS_FILE), np.load(checkpoint / LABELS_FILE)
    assert probs.shape == (len(labels), 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    assert accuracy == pytest.approx(metrics["test_accuracy"])  # the same model, the same split
