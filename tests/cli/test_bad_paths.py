"""Paths that cannot work are refused before any work, naming the option or field and what
was expected: an --out or a cache folder under a file, a missing source sample, a file given
where a run folder or a checkpoint folder belongs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from tests.tiny import tiny_document

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def blocker(tmp_path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def _sweep_file(tmp_path: Path, analysis: dict | None = None) -> Path:
    path = tmp_path / "tiny.yaml"
    document = tiny_document(analysis={"cache_dir": str(tmp_path / "cache"), **(analysis or {})})
    path.write_text(yaml.safe_dump(document))
    return path


def _refused(arguments: list[str]) -> str:
    result = runner.invoke(app, arguments, env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    return " ".join(result.stderr.split())  # rich wraps long lines


@pytest.mark.parametrize(
    "command",
    [
        ["recommend", "{sweep}"],
        ["finetune", "{sweep}"],
        ["bench", "collect", "{sweep}", "--grid", str(REPO / "benchmarks/replay/grid.yaml")],
        ["report", "{tmp}"],
        ["history", "export", "0" * 32, "--tracking-uri", "sqlite:///{tmp}/m.db"],
        ["k8s", "render", "{sweep}"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_an_out_folder_under_a_file_is_refused_before_any_work(tmp_path, blocker, command):
    sweep = _sweep_file(tmp_path)
    arguments = [part.format(sweep=sweep, tmp=tmp_path) for part in command]
    message = _refused([*arguments, "--out", str(blocker / "out")])
    assert "'--out'" in message and f"{blocker} is a file" in message
    assert not (tmp_path / "cache").exists()  # nothing computed


def test_a_cache_folder_under_a_file_names_the_field_and_the_file(tmp_path, blocker):
    sweep = tmp_path / "cached.yaml"
    sweep.write_text(yaml.safe_dump(tiny_document(analysis={"cache_dir": str(blocker / "c")})))
    message = _refused(["recommend", str(sweep), "--no-scratch", "--out", str(tmp_path / "o")])
    assert message.startswith(f"error: {sweep}: 'analysis.cache_dir'")
    assert f"{blocker} is a file" in message


def test_a_missing_source_sample_names_its_field_not_the_target_data(tmp_path):
    missing = tmp_path / "no-such-sample"
    sample = {"kind": "imagefolder", "root": str(missing)}
    sweep = _sweep_file(tmp_path, analysis={"source_sample": sample})
    message = _refused(["recommend", str(sweep), "--no-scratch", "--out", str(tmp_path / "o")])
    assert f"{sweep}: 'analysis.source_sample'" in message and str(missing) in message
    assert "data.root" not in message


def test_missing_target_data_names_the_sweep_file_and_its_section(tmp_path):
    missing = tmp_path / "no-such-data"
    sweep = tmp_path / "nodata.yaml"
    document = tiny_document(analysis={"cache_dir": str(tmp_path / "cache")})
    sweep.write_text(
        yaml.safe_dump({**document, "data": {"kind": "imagefolder", "root": str(missing)}})
    )
    for command in (["recommend", str(sweep), "--no-scratch", "--out", str(tmp_path / "o")],
                    ["finetune", str(sweep), "--out", str(tmp_path / "f")]):  # fmt: skip
        message = _refused(command)
        assert message.startswith(f"error: {sweep}: 'data': Image folder {missing} does not exist")
    assert not (tmp_path / "cache").exists()  # nothing computed


def test_unreadable_weights_name_the_sweep_file_and_their_section(tmp_path):
    garbage = tmp_path / "weights.pt"
    garbage.write_text("not a state dict")
    sweep = tmp_path / "weights.yaml"
    model = {"name": "test_resnet", "pretrained": "checkpoint", "checkpoint": str(garbage)}
    sweep.write_text(yaml.safe_dump({**tiny_document(), "model": model}))
    message = _refused(["finetune", str(sweep), "--out", str(tmp_path / "f")])
    assert message.startswith(f"error: {sweep}: 'model': {garbage}: cannot be read")


def test_a_missing_sqlite_store_is_refused_not_created(tmp_path):
    missing = tmp_path / "typo" / "mlflow.db"
    uri = f"sqlite:///{missing}"
    export = ["history", "export", "0" * 32, "--out", str(tmp_path / "t"), "--tracking-uri", uri]
    for command in (["history", "--tracking-uri", uri], export):
        message = _refused(command)
        assert "'--tracking-uri' must be an MLflow store that exists" in message
        assert f"No file {missing}" in message
    assert not missing.parent.exists()  # MLflow would have created it


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- a\n- b\n", "a YAML list")])
def test_a_sweep_file_that_is_no_mapping_says_what_it_is(tmp_path, text, got):
    sweep = tmp_path / "odd.yaml"
    sweep.write_text(text)
    message = _refused(["recommend", str(sweep)])
    expected = "'<top level>' must be a mapping of sections (model, data, ...)."
    assert message == f"error: {sweep}: {expected} It is {got}."


def test_a_file_given_as_the_report_run_says_what_belongs_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    garbage = tmp_path / "results.json"
    garbage.write_text('{"not": "a sweep"}')
    for run in (str(garbage), "results.json"):
        message = _refused(["report", run])
        assert "RUN" in message and "is a file" in message and "run folder" in message


def test_finetune_resume_from_a_missing_folder_or_a_file(tmp_path, blocker):
    sweep = _sweep_file(tmp_path)
    message = _refused(["finetune", str(sweep), "--resume", str(tmp_path / "nowhere")])
    assert "'--resume'" in message and "does not exist" in message
    message = _refused(["finetune", str(sweep), "--resume", str(blocker)])
    assert "'--resume'" in message and "It is a file" in message
    empty = tmp_path / "empty-checkpoint"
    empty.mkdir()
    message = _refused(["finetune", str(sweep), "--resume", str(empty)])
    assert f"{empty / 'state.pt'}" in message and "no trial checkpoint" in message
