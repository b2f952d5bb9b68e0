"""Sweep files: validation at the edge, with errors naming the file, the field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nonbinary_ft.config import (
    ExperimentConfig,
    TrialSettings,
    apply_overrides,
    load_config,
    with_settings,
)
from nonbinary_ft.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {
    "name": "t",
    "model": {"name": "test_resnet", "pretrained": "none"},
    "data": {"kind": "digits"},
}


def _write(tmp_path, document) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_validates(path):
    assert isinstance(load_config(path), ExperimentConfig)


def test_defaults_are_the_binary_default(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.settings == TrialSettings()
    assert config.settings.reinit_layers == 1 and config.settings.low_layers == 0
    assert config.settings.l2sp_layers == 0
    assert config.settings.effective_lr_new == config.settings.lr_high
    assert (
        config.train.optimizer == "sgd" and config.train.nesterov and config.train.momentum == 0.9
    )


@pytest.mark.parametrize(
    ("patch", "field", "fragment"),
    [
        ({"settings": {"lr_high": -0.1}}, "settings.lr_high", "greater than 0"),
        (
            {"settings": {"reinit_layers": 0}},
            "settings.reinit_layers",
            "greater than or equal to 1",
        ),
        ({"settings": {"low_layers": 2}}, "settings.lr_low", "low_layers > 0"),
        ({"data": {"kind": "cifar"}}, "data.kind", "'imagefolder'"),
        ({"data": {"kind": "imagefolder"}}, "data.root", "imagefolder"),
        ({"train": {"epochs": "many"}}, "train.epochs", "valid integer"),
        ({"train": {"bogus": 1}}, "train.bogus", "not a known setting"),
        ({"model": {"name": "x", "pretrained": "checkpoint"}}, "model.checkpoint", "a file"),
    ],
)
def test_bad_values_name_file_field_and_expectation(tmp_path, patch, field, fragment):
    document = {**MINIMAL, **{k: {**MINIMAL.get(k, {}), **v} for k, v in patch.items()}}
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert info.value.field == field
    assert str(path) in message and fragment in message
    assert "\n" not in message


def test_missing_section_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="'data' must be given"):
        load_config(_write(tmp_path, {"name": "t", "model": {"name": "resnet18"}}))
    with pytest.raises(ConfigError, match="an existing YAML file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(_write(tmp_path, "name: [unclosed"))


def test_overrides_set_settings_and_dotted_fields(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    changed = apply_overrides(
        config, ["reinit_layers=2", "lr_high=0.05", "train.epochs=3", "l2sp_layers=all"]
    )
    assert changed.settings.reinit_layers == 2 and changed.settings.lr_high == 0.05
    assert changed.settings.l2sp_layers == "all" and changed.train.epochs == 3
    assert config.settings.reinit_layers == 1  # frozen: the original is untouched
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(config, ["reinit_layers"])
    with pytest.raises(ConfigError, match="settings.lr_high"):
        apply_overrides(config, ["lr_high=-1"])
    with pytest.raises(ConfigError, match="not a known setting"):
        apply_overrides(config, ["learning_rate=0.1"])


def test_with_settings_validates_a_trial_dict(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert with_settings(config, {"alpha": 0.1}).settings.alpha == 0.1
    with pytest.raises(ConfigError, match="settings.alpha"):
        with_settings(config, {"alpha": -1})
