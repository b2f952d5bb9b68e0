"""analyse(): the steps together, the scratch baseline skipped, given or configured."""

from __future__ import annotations

import json

import pytest

import nonbinary_ft.analysis.runner as runner
from nonbinary_ft.analysis import (
    analyse,
    given_scratch,
    recommended_config,
    scratch_config,
    write_outputs,
)
from nonbinary_ft.config import load_config
from nonbinary_ft.config.space import load_space
from nonbinary_ft.errors import ConfigError


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the from-scratch baseline must not be trained here")

    monkeypatch.setattr(runner, "scratch_baseline", refuse)


def test_without_scratch_the_regime_is_provisional(make_config, tmp_path, no_training):
    report = analyse(make_config(), tmp_path / "work", scratch=False)
    assert report.scratch is None and "--no-scratch" in report.scratch_note
    assert report.regime.provisional and report.regime.decided_by in ("fisher", "none")
    assert report.num_layers == 6  # test_resnet
    doc = report.to_dict()
    assert doc["table1"]["from_scratch_accuracy"] is None and doc["table1"]["gap"] is None
    assert doc["table1"]["fisher"] == report.scores["fisher"].value
    assert set(doc["scores"]) >= {"fisher", "emd", "logme", "leep", "nce", "h_score"}
    json.dumps(doc)  # JSON-ready


@pytest.mark.parametrize(("scratch_val", "label"), [(0.0, "fits_well"), (1.0, "fits_poorly")])
def test_a_given_scratch_result_decides_without_training(
    make_config, tmp_path, no_training, scratch_val, label
):
    report = analyse(make_config(), tmp_path, scratch_result=given_scratch(scratch_val))
    assert report.scratch.status == "given"
    assert report.regime.decided_by == "gap" and not report.regime.provisional
    # The probe cannot reach 100 % on 3 generated classes with random features, nor 0 %.
    assert 0.0 < report.probe.val_accuracy < 1.0
    assert report.regime.label == label == report.recommendation.regime


def test_a_scratch_accuracy_in_the_config_is_used(make_config, tmp_path, no_training):
    config = make_config(analysis={"scratch": {"val_accuracy": 1.0, "test_accuracy": 0.9}})
    report = analyse(config, tmp_path)
    assert report.scratch.val_accuracy == 1.0 and report.scratch.test_accuracy == 0.9
    assert report.regime.label == "fits_poorly"


def test_scratch_disabled_in_the_config(make_config, tmp_path, no_training):
    report = analyse(make_config(analysis={"scratch": {"enabled": False}}), tmp_path)
    assert report.scratch is None and "enabled is false" in report.scratch_note


def test_given_scratch_checks_its_range():
    with pytest.raises(ConfigError, match="analysis.scratch.val_accuracy"):
        given_scratch(1.5)


def test_scratch_config_is_random_init_binary_default_with_its_own_budget(make_config):
    config = make_config(
        settings={"reinit_layers": 2, "l2sp_layers": "all", "lr_high": 0.003, "beta": 0.002},
        analysis={"scratch": {"epochs": 7, "image_size": 24, "lr": 0.2}},
    )
    run = scratch_config(config)
    assert run.model.pretrained == "none" and run.model.checkpoint is None
    assert run.model.image_size == 24 and run.train.epochs == 7
    s = run.settings
    assert (s.reinit_layers, s.low_layers, s.l2sp_layers) == (1, 0, 0)
    assert s.lr_high == 0.2 and s.beta == 0.002
    default_lr = scratch_config(make_config(settings={"lr_high": 0.003}))
    assert default_lr.settings.lr_high == 0.003 and default_lr.model.image_size == 32


def test_outputs_are_loadable(make_config, tmp_path, no_training):
    config = make_config(settings={"lr_high": 0.04})
    report = analyse(config, tmp_path, scratch_result=given_scratch(0.0))
    paths = write_outputs(report, config, tmp_path / "out")
    loaded = load_config(paths["recommended"])
    assert loaded.settings == report.recommendation.settings
    assert loaded.settings.lr_high == pytest.approx(0.004)  # fits well: a tenth of 0.04
    assert loaded == recommended_config(config, report.recommendation)
    assert load_space(paths["space"]) == report.recommendation.space
    doc = json.loads(paths["analysis"].read_text())
    assert doc["regime"]["label"] == "fits_well"
