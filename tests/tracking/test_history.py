"""The history of past sweeps: tags on MLflow parent runs, read back, exported as a table."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config import TrialSettings
from nonbinary_ft.history.record import TAG_FORMAT, history_tags
from nonbinary_ft.history.store import export_table, read_prior
from nonbinary_ft.history.table import read_table
from nonbinary_ft.tracking.history import read_history
from nonbinary_ft.vocabulary import TrialStatus
from tests.reporting.sweep_fixtures import make_results
from tests.tiny import tiny_document


def prior_names() -> list[str]:
    return [past.name for past in read_prior()]


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
    # The tracking server's sweep first, then the prior shipped with the package.
    assert [past["name"] for past in document["history"]] == ["sweep-a"] + prior_names()
    assert [past["origin"] for past in document["history"]][0] == "tracking server"
    alone = CliRunner().invoke(app, ["history", "--tracking-uri", store, "--no-prior", "--json"])
    assert [past["name"] for past in json.loads(alone.stdout)["history"]] == ["sweep-a"]
    bad = CliRunner().invoke(app, ["history", "--table", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2


POISON = [
    [{"reinit_layers": 999, "lr_high": 0.05}, 0.97],  # k beyond any model: fitted, not dropped
    [{"lr_high": 0.0}, 0.96],
    [{"lr_high": -0.01}, 0.95],  # a negative LR crashed the fitting ("math domain error")
    [{"alpha": -5, "l2sp_layers": 2}, 0.94],
    [{"l2sp_layers": "everything"}, 0.93],
    [{"lr_high": 0.02, "momentum": 0.5}, 0.92],  # an unknown key
    [{"lr_high": 0.03}, "high"],
    [{"lr_high": 0.04}, 1.7],
    ["not settings", 0.9],
    [{"lr_high": 0.002, "reinit_layers": 2}, 0.5],
]


def _poisoned_store(store: str, tmp_path) -> str:
    client = MlflowClient(store)
    experiment = client.create_experiment("shared", (tmp_path / "art").as_uri())
    tags = history_tags(make_results(), "test_resnet")
    tags["nbft.history.ranked"] = json.dumps(POISON)
    run = client.create_run(experiment, tags=tags, run_name="poisoned")
    client.create_run(experiment, tags={**tags, "nbft.history.evidence": '{"fisher": -1}'})
    return run.info.run_id


def test_a_poisoned_store_is_checked_before_anything_is_shown_or_run(store, tmp_path, caplog):
    run_id = _poisoned_store(store, tmp_path)
    with caplog.at_level("WARNING"):
        (past,) = read_history(store)
    assert past.source == run_id
    assert [settings for settings, _ in past.ranked] == [
        {"reinit_layers": 999, "lr_high": 0.05},
        {"lr_high": 0.002, "reinit_layers": 2},
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("poisoned" in w and "8 of 10 past settings skipped" in w for w in warnings)
    assert any("no usable evidence" in w for w in warnings)  # the run with Fisher -1


NARROW = {
    "name": "narrow",
    "parameters": {
        "reinit_layers": {"type": "int", "low": 1, "high": 2},
        "lr_high": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
    },
}


def test_nbft_history_for_prints_what_the_sweep_would_run(store, tmp_path):
    _poisoned_store(store, tmp_path)
    document = tiny_document(
        analysis={"cache_dir": str(tmp_path / "cache")},
        sweep={"space": NARROW, "search": {"algorithm": "nbft"}, "mlflow": {"tracking_uri": store}},
    )
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    command = ["history", "--for", str(sweep_file), "--no-prior", "--json"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    first = [trial["settings"] for trial in json.loads(result.stdout)["first_trials"]]
    # k = 999 fitted to the space (1..2) and the model; the LR clipped into its range.
    assert [(s["reinit_layers"], s["lr_high"]) for s in first] == [(2, 0.05), (2, 0.005)]
    assert all(TrialSettings.model_validate(s) for s in first)


@pytest.mark.parametrize(
    ("past_model", "named"),
    [("test_resnet", ""), ("resnet10t", "resnet10t")],
    ids=["same", "family"],
)
def test_nbft_history_for_the_default_search_takes_only_the_same_models_sweeps(
    store, tmp_path, past_model, named
):
    """The default search (zero_shot_model) is blind to the evidence: --for measures none,
    and its first trials come from past sweeps of the sweep's own model (test_resnet), or,
    with none, of its family (resnet10t, another ResNet), never of another family."""
    client = MlflowClient(store)
    experiment = client.create_experiment("shared", (tmp_path / "art").as_uri())
    client.create_run(experiment, tags=history_tags(make_results(), past_model), run_name="same")
    other = history_tags(make_results(), "another_model")
    other["nbft.history.ranked"] = json.dumps([[{"lr_high": 0.0123, "reinit_layers": 1}, 0.99]])
    client.create_run(experiment, tags=other, run_name="other")
    document = tiny_document(
        analysis={"cache_dir": str(tmp_path / "cache")},
        sweep={"space": NARROW, "mlflow": {"tracking_uri": store}},
    )
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    command = ["history", "--for", str(sweep_file), "--no-prior", "--json"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["evidence"] is None and not (tmp_path / "cache").exists()
    first = answer["first_trials"]
    assert first and all("same" in trial["reason"] for trial in first)
    assert all(named in trial["reason"] for trial in first)
    assert all(trial["settings"]["lr_high"] != 0.0123 for trial in first)


def test_commands_that_read_a_server_that_never_answers_give_up_in_seconds(tmp_path):
    import socket
    import time

    from nonbinary_ft.tracking.server import CONNECT_TIMEOUT_S

    silent = socket.socket()  # accepts connections (the backlog), never answers a request
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        for command in (
            ["history", "--tracking-uri", uri, "--no-prior"],
            ["history", "export", "0" * 32, "--tracking-uri", uri, "--out", str(tmp_path / "t")],
        ):
            started = time.monotonic()
            result = CliRunner().invoke(app, command)
            assert time.monotonic() - started < CONNECT_TIMEOUT_S + 20
            assert result.exit_code == 2, result.output
            assert uri in result.stderr and "no answer within" in result.stderr
    finally:
        silent.close()
