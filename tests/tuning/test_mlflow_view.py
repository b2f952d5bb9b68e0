"""A finished tiny sweep as MLflow's users see it: the runs view, data sets, source, the
verdict as the description, and the recommended model logged, registered and predicting.

The UI checks run headless Chromium on a real ``mlflow server`` over the sweep's database;
screenshots go to ``$NBFT_ARTIFACTS`` when set.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.data import build_datasets, create_transforms, read_samples
from nonbinary_ft.training.trial import load_checkpoint, prepare_model
from nonbinary_ft.tuning.orchestrate import run_sweep
from nonbinary_ft.tuning.trainable import trial_config_for
from tests.browser import chromium, dump_dom, keep_artifact, run_chromium, visible_text

pytestmark = pytest.mark.slow

MODEL = "tiny-classifier"


def _git(folder: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def swept(ray_cluster, tmp_path_factory, make_document):
    tmp_path = tmp_path_factory.mktemp("mlflow-view")
    document = make_document(
        tmp_path,
        "mlview",
        space={
            "name": "small",
            "parameters": {
                "lr_high": {"type": "choice", "values": [0.01, 0.05]},
                "reinit_layers": {"type": "choice", "values": [1, 2]},
            },
        },
        search={"seed": 1},
        budget={"num_samples": 3},
        resources={"cpus": 1, "gpus": 0, "max_concurrent": 2},
        final={"top_n": 1, "seeds": [0, 1]},
        mlflow={"register_as": MODEL},
    )
    # The sweep file in a git repository: the parent run records its commit.
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "mlview.yaml"
    source.write_text(yaml.safe_dump(document))
    _git(repo, "init", "-q")
    _git(repo, "add", "mlview.yaml")
    _git(repo, "commit", "-q", "-m", "sweep")
    commit = _git(repo, "rev-parse", "HEAD").strip()
    config = ExperimentConfig.model_validate(document)
    return run_sweep(config, source=source), config, commit


def _children(result, role: str) -> list:
    client = MlflowClient(result.tracking_uri)
    experiment = client.get_run(result.parent_run_id).info.experiment_id
    return client.search_runs([experiment], f"tags.`nbft.role` = '{role}'")


def test_runs_show_their_data_sets_and_the_parent_its_source_and_verdict(swept):
    result, _, commit = swept
    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.parent_run_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    tags = parent.data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert (
        tags["mlflow.source.name"].startswith("nbft sweep ")
        and "mlview.yaml" in tags["mlflow.source.name"]
    )
    note = tags["mlflow.note.content"]
    assert "**Regime:" in note and "over the binary baseline" in note and "```yaml" in note

    trials = _children(result, "trial")
    assert {run.data.tags["nbft.stage"] for run in trials} == {"search", "final"}
    digests = set()
    for run in trials:
        inputs = run.inputs.dataset_inputs
        contexts = {tag.value for item in inputs for tag in item.tags}
        assert contexts == {"training", "validation", "test"}, run.info.run_name
        digests.add(tuple(sorted(item.dataset.digest for item in inputs)))
        # Per-epoch metrics keep step = epoch, so MLflow's charts align trials by epoch.
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert steps == list(range(1, len(steps) + 1))
    assert len(digests) == 1, "every run trains on the same splits: one digest each"

    (analysis,) = _children(result, "analysis")
    assert "fixed_feature_accuracy" in analysis.data.metrics
    assert "| table 1 | value |" in analysis.data.tags["mlflow.note.content"]


def _trained_model(result, config, trial_id: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The best seed's model, rebuilt from its own last checkpoint, and a test batch."""
    (trial,) = [t for t in result.final_trials if t.trial_id == trial_id]
    trial_config = trial_config_for(config, {**trial.settings, "train_seed": trial.seed})
    folder = Path(config.sweep.storage.path) / config.name / "final" / trial_id
    (checkpoint,) = sorted(folder.glob("checkpoint_*"))[-1:]
    classes = read_samples(config.data).classes
    model = prepare_model(trial_config.architecture_only(), len(classes)).model
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    _, eval_tf = create_transforms(config.data, model, config.model.image_size)
    test = build_datasets(config.data, eval_tf, eval_tf).test
    batch = torch.stack([test[i][0] for i in range(len(test))])
    return model.eval(), batch


def test_the_recommended_model_is_registered_and_predicts_like_the_trained_one(swept):
    result, config, _ = swept
    models = result.models
    assert models is not None and len(models.logged) == 2  # one per seed
    assert models.uri == f"models:/{MODEL}/1"
    client = MlflowClient(result.tracking_uri)
    version = client.get_model_version(MODEL, "1")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert version.tags["parent_run_id"] == result.parent_run_id
    assert json.loads(version.tags["settings"])["lr_high"] in (0.01, 0.05)
    best = max(
        (t for t in result.final_trials if t.trial_id in models.logged),
        key=lambda t: (t.test_accuracy, t.trial_id),
    )
    assert float(version.tags["test_accuracy"]) == pytest.approx(best.test_accuracy, abs=1e-4)

    model, batch = _trained_model(result, config, best.trial_id)
    with torch.no_grad():
        expected = model(batch).argmax(dim=1).numpy()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(result.tracking_uri)
    try:
        loaded = mlflow.pyfunc.load_model(models.uri)
        predicted = np.asarray(loaded.predict(batch.numpy())).argmax(axis=1)
        metadata = loaded.metadata.metadata
    finally:
        mlflow.set_tracking_uri(previous)
    assert (predicted == expected).all()
    assert metadata["class_names"] and len(metadata["mean"]) == len(metadata["std"]) == 3


def test_the_mlflow_ui_on_a_real_server_opens_on_the_runs_and_lists_data_sets(swept, tmp_path):
    """The link the sweep prints opens MLflow's runs table (not its GenAI overview) on the
    sweep's parent run, whose unfolded child runs are the sweep's; a trial's page lists its
    data sets. The runs table is checked by benchmarks.mlflow_ui's timer, which times it at
    1,000 trials in benchmarks.sweep_scale."""
    from benchmarks.mlflow_ui import mlflow_server, time_runs_page

    browser = chromium()
    result, _, _ = swept
    database = Path(result.tracking_uri.removeprefix("sqlite:///"))
    with mlflow_server(database, tmp_path) as url:
        client = MlflowClient(url)
        children = client.search_runs(
            [client.get_experiment_by_name(result.mlflow_experiment).experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
        )
        page = result.runs_page.replace("http://127.0.0.1:5000", url)
        figures = time_runs_page(page, result.name)
        assert figures["children_listed"] == len(children) > 0
        assert 0 < figures["runs_table_s"] < 120 and 0 < figures["children_s"] < 120
        (trial, *_) = _children(result, "trial")
        experiment = trial.info.experiment_id
        digest = trial.inputs.dataset_inputs[0].dataset.digest
        run_page = f"{url}/#/experiments/{experiment}/runs/{trial.info.run_id}"
        text = visible_text(dump_dom(browser, tmp_path / "p2", run_page))
        assert "Datasets" in text and digest in text, text[:3000]
        assert client.get_registered_model(MODEL).latest_versions
        for name, target in (("mlflow-runs.png", page), ("mlflow-run.png", run_page)):
            shot = tmp_path / name
            size, budget = "--window-size=1400,900", "--virtual-time-budget=15000"
            run_chromium(browser, tmp_path / f"shot-{name}", f"--screenshot={shot}", size, budget,
                         target)  # fmt: skip
            assert shot.is_file() and shot.stat().st_size > 10_000
            keep_artifact(shot, name)
