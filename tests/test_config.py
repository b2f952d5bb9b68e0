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
from tests.tiny import tiny_document

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


def test_every_bad_field_is_named_on_the_one_line(tmp_path):
    document = {**MINIMAL, "train": {"epochs": "many", "bogus": 1}}
    document.pop("data")
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, document))
    message = str(info.value)
    assert "\n" not in message
    named = [info.value.field, *message.split("Also wrong in the same file: ")[1].split(", ")]
    assert sorted(name.strip("'.)") for name in named) == ["data", "train.bogus", "train.epochs"]


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


# --- bad input found by trying the tool as a new user would --------------------------------


@pytest.mark.parametrize("field", ["lr_high", "alpha", "beta"])
def test_an_infinite_setting_is_refused_at_load(tmp_path, field):
    path = tmp_path / "inf.yaml"
    path.write_text(yaml.safe_dump({**tiny_document(), "settings": {field: float("inf")}}))
    with pytest.raises(ConfigError, match=f"'settings.{field}' must be a finite number"):
        load_config(path)


@pytest.mark.parametrize("name", ["", "../outside", "/abs/olute", ".hidden", "x" * 101, "a b"])
def test_a_name_that_would_leave_the_storage_folder_is_refused(tmp_path, name):
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump({**tiny_document(), "name": name}))
    with pytest.raises(ConfigError, match="'name' must be a folder name") as refused:
        load_config(path)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_an_unknown_device_is_refused_naming_the_forms(tmp_path, device):
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(tiny_document(train={"device": device})))
    with pytest.raises(ConfigError, match="'train.device' must be 'auto', 'cpu', 'cuda'"):
        load_config(path)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: t\nsettings:\n  lr_high: 0.1\nsettings:\n  lr_high: 0.2\n")
    with pytest.raises(ConfigError, match="'settings' is given twice \\(line 4"):
        load_config(path)


def test_yaml_merge_keys_work_and_a_written_key_overrides_a_merged_one(tmp_path):
    path = tmp_path / "merged.yaml"
    text = (
        "name: merged\n"
        "model: {name: test_resnet, pretrained: none, image_size: 32}\n"
        "data: &data {kind: synthetic, num_workers: 0, batch_size: 8}\n"
        "analysis:\n  source_sample:\n    <<: *data\n    batch_size: 4\n"
        "train: {epochs: 3, warmup_epochs: 0, device: cpu}\n"
    )
    path.write_text(text)
    config = load_config(path)
    assert config.data.batch_size == 8 and config.analysis.source_sample.batch_size == 4
    assert config.analysis.source_sample.kind == "synthetic"


def test_relative_paths_are_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig.model_validate(
        tiny_document(model={"pretrained": "checkpoint", "checkpoint": "weights/source.pt"})
    )
    assert config.model.checkpoint == tmp_path / "weights" / "source.pt"
    assert config.analysis.cache_dir == tmp_path / ".nbft-cache"


def test_a_union_field_names_every_form_it_accepts(tmp_path):
    path = tmp_path / "union.yaml"
    path.write_text(yaml.safe_dump(tiny_document(settings={"l2sp_layers": "some"})))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "'settings.l2sp_layers' must be" in message and "'all'" in message
    assert ".int" not in message and "literal" not in message


def test_a_length_constraint_says_what_it_expects_in_plain_words(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(tiny_document(sweep={"mlflow": {"register_as": ""}})))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    expected = "'sweep.mlflow.register_as' must be a text of at least 1 character(s) but got ''."
    assert str(refused.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("patch", "field", "suggestion"),
    [
        ({"train": {"epoch": 3}}, "train.epoch", "train.epochs"),
        ({"sweep": {"serch": {}}}, "sweep.serch", "sweep.search"),
        (
            {"sweep": {"mlflow": {"register": "m"}}},
            "sweep.mlflow.register",
            "sweep.mlflow.register_as",
        ),
        ({"sweep": {"mlflow": {"colour": "m"}}}, "sweep.mlflow.colour", None),
        ({"settings": {"reinit_layer": 2}}, "settings.reinit_layer", "settings.reinit_layers"),
    ],
)
def test_an_unknown_key_gets_the_closest_known_one(tmp_path, patch, field, suggestion):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(tiny_document(name="typo", **patch)))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: '{field}' must be absent: it is not a known setting")
    if suggestion is None:
        assert "Did you mean" not in message
    else:
        assert message.endswith(f"Did you mean '{suggestion}'?")
