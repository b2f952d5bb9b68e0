"""``nbft sweeps ROOT``: every sweep folder under a storage root with its state and best."""

from __future__ import annotations

import dataclasses
import json

import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.results import BEST_LABEL, Missing, save_results
from nonbinary_ft.vocabulary import TrialStatus
from tests.reporting.sweep_fixtures import make_results

runner = CliRunner()


def _named(results, name: str):
    document = {**yaml.safe_load(results.sweep_yaml), "name": name}
    return dataclasses.replace(results, sweep_yaml=yaml.safe_dump(document))


def test_finished_searching_and_planned_sweeps_are_listed_with_their_best(tmp_path):
    finished = _named(make_results(), "done")
    save_results(tmp_path / "done", finished)
    stopped = dataclasses.replace(
        _named(make_results(), "stopped"),
        final=Missing("stage 3 not reached"), environment=Missing("not ended"),
    )  # fmt: skip
    save_results(tmp_path / "stopped", stopped)
    (tmp_path / "planned").mkdir()
    (tmp_path / "planned" / "sweep.yaml").write_text("name: planned\n")
    (tmp_path / "not-a-sweep").mkdir()
    result = runner.invoke(app, ["sweeps", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == {"done", "stopped", "planned"}
    assert [listed[n]["state"] for n in ("done", "stopped", "planned")] == [
        "finished", "searching", "planned",
    ]  # fmt: skip
    completed = [t for t in finished.trials if t.status == TrialStatus.COMPLETED]
    assert listed["done"]["completed"] == len(completed)
    scores = [t.final_val_accuracy for t in completed if t.final_val_accuracy is not None]
    assert listed["done"]["best_val"] == max(scores)
    (best,) = [entry for entry in finished.final if entry.label == BEST_LABEL]
    assert listed["done"]["best_test"] == best.mean
    assert listed["stopped"]["best_test"] is None and listed["planned"]["trials"] == 0
    table = runner.invoke(app, ["sweeps", str(tmp_path)], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "searching" in table.stdout and "finished" in table.stdout


def test_a_root_that_is_not_a_folder_exits_2_naming_it(tmp_path):
    result = runner.invoke(app, ["sweeps", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "ROOT" in result.stderr and "nowhere" in result.stderr
