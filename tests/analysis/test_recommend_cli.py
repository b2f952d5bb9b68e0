"""`nbft recommend` end to end on a tiny checkpoint and generated data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config import load_config
from nonbinary_ft.config.space import load_space

cli = CliRunner()

TABLE1 = {"fixed_feature_accuracy", "from_scratch_accuracy", "gap", "fisher", "emd_similarity"}


def _sweep_file(tmp_path: Path, config) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def test_recommend_end_to_end_then_cache_hit(make_config, tmp_path, caplog):
    sweep = _sweep_file(tmp_path, make_config())
    out = tmp_path / "analysis"
    result = cli.invoke(app, ["recommend", str(sweep), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["regime"]["label"] in ("fits_well", "fits_poorly", "unclear")
    assert doc["regime"]["decided_by"] == "gap" and doc["regime"]["provisional"] is False
    assert set(doc["table1"]) >= TABLE1
    table1 = doc["table1"]
    assert table1["gap"] == table1["from_scratch_accuracy"] - table1["fixed_feature_accuracy"]
    assert doc["scratch"]["status"] == "completed" and doc["scratch"]["epochs"] == 1
    assert doc["scores"]["emd"]["value"] is None and doc["scores"]["emd"]["reason"]
    assert doc["features"]["cache_hit"] is False

    recommended = load_config(out / "recommended.yaml")
    assert recommended.settings.model_dump(mode="json") == doc["recommendation"]["settings"]
    assert recommended.model == make_config().model and recommended.data == make_config().data
    assert load_space(out / "space.yaml").model_dump(mode="json") == doc["recommendation"]["space"]
    written = json.loads((out / "analysis.json").read_text())
    assert written["regime"] == doc["regime"]

    caplog.set_level(logging.INFO, logger="nonbinary_ft.analysis.features")
    again = cli.invoke(app, ["recommend", str(sweep), "--out", str(out), "--json", "--no-scratch"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["features"]["cache_hit"] is True
    assert f"features: cache hit {doc['features']['key']}" in caplog.text
    assert second["table1"]["fixed_feature_accuracy"] == table1["fixed_feature_accuracy"]
    assert second["regime"]["provisional"] is True and second["scratch"] is None


def test_recommend_prints_the_evidence_regime_and_settings(make_config, tmp_path):
    sweep = _sweep_file(tmp_path, make_config())
    result = cli.invoke(
        app,
        ["recommend", str(sweep), "--out", str(tmp_path / "o"), "--no-scratch"]
        + ["--set", "analysis.scratch.val_accuracy=0.0"],
        env={"COLUMNS": "250"},  # rich wraps table cells at the terminal's width
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    for fragment in ("fixed features", "from scratch", "gap", "Fisher", "EMD"):
        assert fragment in text
    assert "not computed: needs a sample of the source data set" in text
    assert "regime: fits_well" in text and "rule: gap = scratch - fixed" in text
    # The settings block is ready-to-run YAML (comments are the reasons).
    block = text[text.index("settings:") :].split("\n\n")[0]
    settings = yaml.safe_load(block)["settings"]
    assert settings["reinit_layers"] == 2 and settings["l2sp_layers"] == "all"


def test_a_bad_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"name": "x", "model": {"name": "test_resnet"}, "data": {"kind": "cifar"}})
    )
    result = cli.invoke(app, ["recommend", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.kind" in lines[0]
    assert not (tmp_path / "o").exists()


def test_help_lists_the_options():
    result = cli.invoke(app, ["recommend", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--no-scratch", "--json"):
        assert option in result.output
