"""``nbft report``: a run folder or an MLflow run id in, report files and one JSON document out."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml
from sweep_fixtures import BEST_ACCURACIES, DEFAULT_ACCURACIES
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app

runner = CliRunner()


def _one_line_error(args: list[str], *fragments: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def file_store(tmp_path, monkeypatch) -> str:
    """A file-based MLflow store in tmp (MLflow 3 wants an explicit opt-in for it)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return (tmp_path / "mlruns").as_uri()


def test_report_on_a_run_folder_prints_paths_and_verdict(sweep_folder):
    result = runner.invoke(app, ["report", str(sweep_folder), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    # Written into the run folder by default.
    assert Path(document["paths"]["html"]) == sweep_folder / "report.html"
    assert Path(document["paths"]["markdown"]) == sweep_folder / "report.md"
    assert (sweep_folder / "recommended.yaml").is_file()
    assert all(Path(path).is_file() for path in document["paths"]["images"])
    verdict = document["verdict"]
    assert verdict["regime"] == "fits_well"
    gain = statistics.mean(BEST_ACCURACIES) - statistics.mean(DEFAULT_ACCURACIES)
    assert verdict["gain_over_default"] == pytest.approx(gain)
    assert verdict["settings"]["l2sp_layers"] == "all"
    assert document["mlflow"] == {
        "logged_to_run": None,
        "note": "not logged: no MLflow tracking URI known",
    }


def test_report_on_an_empty_folder_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(["report", str(empty)], f"{empty} is not a sweep folder", "sweep.yaml")


def test_report_on_a_missing_folder_exits_2(tmp_path):
    _one_line_error(["report", str(tmp_path / "nope")], "does not exist")


def test_report_on_an_unknown_run_id_exits_2(file_store):
    run_id = "0123456789abcdef0123456789abcdef"
    _one_line_error(
        ["report", run_id, "--tracking-uri", file_store], f"MLflow run {run_id} not found"
    )


def test_report_on_a_run_id_without_a_tracking_uri_exits_2(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _one_line_error(["report", "0123456789abcdef"], "--tracking-uri")


def test_report_from_an_mlflow_run_is_logged_back_to_it(sweep_folder, file_store, tmp_path):
    from mlflow.tracking import MlflowClient

    from nonbinary_ft.tracking.artifacts import log_results

    client = MlflowClient(file_store)
    experiment = client.create_experiment("tiny-sweep", (tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment, run_name="tiny-sweep").info.run_id
    log_results(sweep_folder, run_id, file_store)

    out = tmp_path / "from-mlflow"
    args = ["report", run_id, "--tracking-uri", file_store, "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["verdict"]["regime"] == "fits_well"
    assert document["mlflow"]["logged_to_run"] == run_id
    logged = {Path(item.path).name for item in client.list_artifacts(run_id, "report")}
    assert {"report.html", "report.md", "recommended.yaml", "progress.png"} <= logged
    assert f"MLflow run {run_id}" in (out / "report.html").read_text()

    # A run without results/ is not a sweep's parent run.
    other = client.create_run(experiment).info.run_id
    _one_line_error(["report", other, "--tracking-uri", file_store], "no 'results/' artifacts")


def test_report_on_a_folder_is_logged_to_the_parent_run_its_sweep_file_names(
    sweep_folder, file_store, tmp_path
):
    """No run id recorded: the sweep file's MLflow section and the run name find the parent."""
    import yaml
    from mlflow.tracking import MlflowClient

    from nonbinary_ft.tracking import TAG_ROLE

    client = MlflowClient(file_store)
    experiment = client.create_experiment("tiny-exp", (tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="tiny-sweep", tags={TAG_ROLE: "sweep"})
    client.create_run(experiment, run_name="tiny-sweep")  # a namesake that is no sweep
    document = yaml.safe_load((sweep_folder / "sweep.yaml").read_text())
    document["sweep"]["mlflow"] = {"tracking_uri": file_store, "experiment": "tiny-exp"}
    (sweep_folder / "sweep.yaml").write_text(yaml.safe_dump(document))

    result = runner.invoke(app, ["report", str(sweep_folder)])
    assert result.exit_code == 0, result.output
    assert "regime fits_well" in result.stdout
    assert f"logged to MLflow run {parent.info.run_id}" in result.stdout
    logged = {Path(i.path).name for i in client.list_artifacts(parent.info.run_id, "report")}
    assert "report.html" in logged and "report.md" in logged


def test_report_on_a_folder_of_garbage_exits_2(tmp_path):
    folder = tmp_path / "garbage"
    folder.mkdir()
    (folder / "sweep.yaml").write_text("\x00\x01 not: [yaml")
    _one_line_error(["report", str(folder)], f"{folder} is not a sweep folder", "names no sweep")
    assert not (folder / "report.html").exists()


def test_report_reads_a_sweep_file_whose_mlflow_section_is_a_string(sweep_folder):
    sweep = yaml.safe_load((sweep_folder / "sweep.yaml").read_text())
    sweep["sweep"]["mlflow"] = "sqlite:///x.db"
    (sweep_folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    result = runner.invoke(app, ["report", str(sweep_folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mlflow"]["logged_to_run"] is None
