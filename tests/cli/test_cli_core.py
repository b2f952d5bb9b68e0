"""The nbft command line: tables, --json documents, exit 2 with one line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from tests.tiny import tiny_document

runner = CliRunner()

TINY = tiny_document()


def _sweep_file(tmp_path: Path, document=TINY) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_every_command_has_help():
    for command in ("layers", "finetune"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--json" in result.output


def test_layers_json_counts_from_bottom_and_top():
    result = runner.invoke(app, ["layers", "inception_v4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 21
    assert rows[19]["label"] == "features.21" and rows[19]["from_top"] == 2
    assert rows[-1]["from_top"] == 1 and rows[0]["index"] == 1


def test_layers_table():
    result = runner.invoke(app, ["layers", "test_resnet"])
    assert result.exit_code == 0
    assert "6 layers" in result.stdout and "layer4.0" in result.stdout


def test_unknown_model_exits_2_with_one_line():
    result = runner.invoke(app, ["layers", "resnet5O"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # The name is the command's argument here, not a sweep file's field.
    assert len(lines) == 1 and "'MODEL'" in lines[0] and "resnet50" in lines[0]


def test_finetune_json_end_to_end(tmp_path):
    """A real subprocess: stdout holds exactly one JSON document, logs go to stderr."""
    out = tmp_path / "run"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "nonbinary_ft.cli.main",
            "finetune",
            str(_sweep_file(tmp_path)),
            "--set",
            "reinit_layers=2",
            "--set",
            "lr_high=0.02",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)
    assert summary["status"] == "completed"
    assert summary["settings"]["reinit_layers"] == 2
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert (
        json.loads((out / "result.json").read_text())["test_accuracy"] == summary["test_accuracy"]
    )
    assert "epoch   1" in process.stderr


def test_finetune_prints_epochs_and_test_accuracy(tmp_path):
    result = runner.invoke(
        app, ["finetune", str(_sweep_file(tmp_path)), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    assert "epoch   1" in result.stdout and "test accuracy" in result.stdout


def _assert_bad_input(args, *fragments):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_inputs_exit_2_naming_the_field(tmp_path):
    sweep = str(_sweep_file(tmp_path))
    _assert_bad_input(
        ["finetune", sweep, "--set", "lr_high=-0.1"], "settings.lr_high", "greater than 0"
    )
    _assert_bad_input(
        ["finetune", sweep, "--set", "reinit_layers=6"], "settings.reinit_layers", "between 1 and 5"
    )
    _assert_bad_input(
        ["finetune", sweep, "--set", "reinit_layers=2", "--set", "l2sp_layers=5"],
        "settings.l2sp_layers",
        "at most 4",
    )
    _assert_bad_input(
        [
            "finetune",
            sweep,
            "--set",
            "low_layers=5",
            "--set",
            "lr_low=0.01",
            "--set",
            "reinit_layers=3",
        ],
        "settings.low_layers",
        "at most 3",
    )
    _assert_bad_input(["finetune", str(tmp_path / "nope.yaml")], "nope.yaml")


def test_missing_data_and_empty_class_exit_2(tmp_path):
    missing = {**TINY, "data": {"kind": "imagefolder", "root": str(tmp_path / "absent")}}
    _assert_bad_input(["finetune", str(_sweep_file(tmp_path, missing))], "absent")
    root = tmp_path / "folder"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "dogs").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(root / "train" / "cats" / "a.png")
    empty = {**TINY, "data": {"kind": "imagefolder", "root": str(root)}}
    _assert_bad_input(["finetune", str(_sweep_file(tmp_path, empty))], "dogs")


def test_out_that_is_a_file_and_a_missing_resume_folder_fail_before_any_epoch(tmp_path):
    sweep = str(_sweep_file(tmp_path))
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    _assert_bad_input(["finetune", sweep, "--out", str(taken)], "'--out'", f"{taken} is a file")
    absent = tmp_path / "absent"
    _assert_bad_input(
        ["finetune", sweep, "--out", str(tmp_path / "run"), "--resume", str(absent)],
        "'--resume'",
        "does not exist",
    )
    # The state.pt file itself instead of its folder is no checkpoint folder either.
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "state.pt").write_bytes(b"")
    _assert_bad_input(
        [
            "finetune",
            sweep,
            "--out",
            str(tmp_path / "run"),
            "--resume",
            str(tmp_path / "cut" / "state.pt"),
        ],
        "'--resume'",
        "It is a file",
    )


def test_a_trial_that_diverges_in_its_first_epoch_keeps_its_history(tmp_path):
    sweep = str(_sweep_file(tmp_path))
    out = tmp_path / "diverged"
    result = runner.invoke(
        app, ["finetune", sweep, "--set", "lr_high=1e6", "--out", str(out), "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs"] == 1
    assert summary["final"]["status"] == "diverged"
