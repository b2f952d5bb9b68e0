"""A 200-trial sweep on the loopback cluster, each trial reporting a recorded table's epochs
(``TrainableOptions.rehearse_table``): every stage runs as in a real sweep, every trial gets
exactly one MLflow child run, and the report renders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.sweep_scale import TABLE, sweep_document
from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.history.table import read_table
from nonbinary_ft.tracking.runs import TAG_ROLE, TAG_STAGE, TAG_TRIAL
from nonbinary_ft.tuning import run_sweep
from nonbinary_ft.tuning.trainable import TrainableOptions
from tests.browser import chromium, dump_dom, visible_text

pytestmark = pytest.mark.slow

TRIALS = 200


@pytest.fixture(scope="module")
def big_sweep(ray_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("scale")
    table = read_table(TABLE)
    document = sweep_document(TRIALS, workdir, table.epochs, cpus_per_trial=0.5)
    config = ExperimentConfig.model_validate(document)
    return run_sweep(config, options=TrainableOptions(rehearse_table=str(TABLE))), workdir


def test_every_trial_of_a_200_trial_sweep_has_one_mlflow_child_run(big_sweep):
    run, _ = big_sweep
    assert len(run.trials) == TRIALS
    client = MlflowClient(run.tracking_uri)
    experiment = client.get_experiment_by_name(run.mlflow_experiment)
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG_ROLE}` = 'trial' and tags.`{TAG_STAGE}` = 'search' "
        f"and tags.`mlflow.parentRunId` = '{run.parent_run_id}'",
        max_results=5000,
    )
    per_trial = Counter(child.data.tags[TAG_TRIAL] for child in children)
    assert set(per_trial) == {trial.trial_id for trial in run.trials}
    assert set(per_trial.values()) == {1}
    # Each child holds the trial's epochs as recorded (the table's curve, or the stop).
    sample = next(iter(children))
    history = client.get_metric_history(sample.info.run_id, "val_accuracy")
    assert 1 <= len(history) <= read_table(TABLE).epochs


def test_the_report_of_a_200_trial_sweep_renders(big_sweep, tmp_path):
    run, _ = big_sweep
    html = Path(run.storage) / "report.html"
    assert html.is_file() and html.stat().st_size < 5 * 2**20
    text = visible_text(dump_dom(chromium(), tmp_path / "profile", html.as_uri()))
    assert run.name in text and "Verdict" in text
    assert str(TRIALS) in text  # the trial count is stated


def test_a_200_trial_sweep_keeps_only_the_checkpoints_a_snapshot_names(big_sweep):
    run, _ = big_sweep
    search = next(Path(run.storage).rglob("search"))
    kept = Counter(folder.parent.name for folder in search.glob("*/checkpoint_*"))
    # Every trial checkpoints each epoch it reports (8 for a completed one); once the sweep
    # has ended, the pruner leaves each trial its newest.
    assert set(kept) == {trial_dir.name for trial_dir in search.iterdir() if trial_dir.is_dir()}
    assert set(kept.values()) == {1}
