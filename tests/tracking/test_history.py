"""The history of past sweeps: tags on MLflow parent runs, read back, exported as a table."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.replay.table import read_table
from nonbinary_ft.tracking.history import (
    TAG_FORMAT,
    export_table,
    history_tags,
    read_history,
)
from nonbinary_ft.vocabulary import TrialStatus
from tests.reporting.sweep_fixtures import make_results


@pytest.fixture()
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _completed_best_first(results) -> list[tuple[dict, float]]:
    done = [t for t in results.trials if t.status == TrialStatus.COMPLETED]
    ranked = sorted(done, key=lambda t: -t.final_val_accuracy)
    return [(t.settings, t.final_val_accuracy) for t in ranked]


def test_a_finished_sweep_round_trips_through_mlflow_tags(store, tmp_path):
    results = make_results()
    client = MlflowClient(store)
    experiment = client.create_experiment("past", (tmp_path / "art").as_uri())
    tags = history_tags(results, "test_resnet")
    run = client.create_run(experiment, tags=tags, run_name="sweep-a")
    # A run with the format tag but broken values is skipped, not fatal.
    client.create_run(experiment, tags={TAG_FORMAT: "1", "nbft.history.ranked": "["})
    client.create_run(experiment, tags={"nbft.role": "sweep"})  # not in the history
    history = read_history(store)
    assert [past.name for past in history] == ["sweep-a"]
    past = history[0]
    assert past.source == run.info.run_id
    assert past.evidence.fixed_feature_accuracy == pytest.approx(0.78)
    assert past.evidence.fisher == pytest.approx(1.6)
    assert past.regime == "fits_well"
    expected = _completed_best_first(results)
    assert [settings for settings, _ in past.ranked] == [settings for settings, _ in expected]
    assert [value for _, value in past.ranked] == pytest.approx([v for _, v in expected])
    assert read_history(store, exclude_run=run.info.run_id) == []


def test_a_sweep_without_evidence_leaves_no_history(store):
    import dataclasses

    from nonbinary_ft.results import Missing

    results = dataclasses.replace(make_results(), analysis=Missing("no analysis.json"))
    assert history_tags(results, "test_resnet") == {}


def test_a_past_sweep_exports_as_a_replay_table(tmp_path):
    results = make_results()
    folder = export_table(results, tmp_path / "table", num_layers=6, epochs=4)
    table = read_table(folder)
    past = table.as_past_sweep()
    completed = _completed_best_first(results)
    assert past.winner == pytest.approx(completed[0][0])
    assert past.evidence.fisher == pytest.approx(1.6)


def test_nbft_history_lists_the_store(store, tmp_path):
    client = MlflowClient(store)
    experiment = client.create_experiment("past", (tmp_path / "art").as_uri())
    client.create_run(experiment, tags=history_tags(make_results(), "m"), run_name="sweep-a")
    result = CliRunner().invoke(app, ["history", "--tracking-uri", store, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [past["name"] for past in document["history"]] == ["sweep-a"]
    bad = CliRunner().invoke(app, ["history", "--table", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2
