"""One trial end to end on a tiny model and generated data: reports, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from nonbinary_ft.config import ExperimentConfig, apply_overrides
from nonbinary_ft.errors import ConfigError, ModelError
from nonbinary_ft.results import EpochRecord
from nonbinary_ft.training.trial import CHECKPOINT_FILE, load_checkpoint, run_trial
from tests.tiny import tiny_document

BASE = tiny_document(
    train={"epochs": 2, "warmup_epochs": 1, "seed": 3},
    settings={
        "reinit_layers": 2,
        "lr_high": 0.05,
        "low_layers": 2,
        "lr_low": 0.01,
        "l2sp_layers": 2,
        "alpha": 0.1,
        "beta": 0.001,
    },
)


def _config(*overrides: str) -> ExperimentConfig:
    return apply_overrides(ExperimentConfig.model_validate(BASE), list(overrides))


class Recorder:
    def __init__(self):
        self.reports = []

    def __call__(self, record: EpochRecord, checkpoint):
        self.reports.append((record.to_report(), checkpoint))


def test_trial_reports_every_epoch_with_a_checkpoint(tmp_path):
    recorder = Recorder()
    result = run_trial(_config(), recorder, workdir=tmp_path)
    assert [m["epoch"] for m, _ in recorder.reports] == [1, 2]
    for metrics, checkpoint in recorder.reports:
        assert (checkpoint / CHECKPOINT_FILE).is_file()
        assert 0.0 <= metrics["val_accuracy"] <= 1.0
        assert metrics["l2sp_penalty"] >= 0.0 and metrics["l2_penalty"] > 0.0
        assert metrics["lr_low"] / metrics["lr_high"] == pytest.approx(0.2)
    last = recorder.reports[-1][0]
    assert last["status"] == "completed" and last["done"] is True
    assert result.test_accuracy == last["test_accuracy"]
    assert result.status == "completed"
    # L2-SP starts at zero distance from w0, then the weights move away from it.
    assert recorder.reports[0][0]["l2sp_penalty"] > 0.0


def test_same_seed_same_trial(tmp_path):
    first = run_trial(_config(), Recorder(), workdir=tmp_path / "a")
    second = run_trial(_config(), Recorder(), workdir=tmp_path / "b")
    assert [h.train_loss for h in first.history] == [h.train_loss for h in second.history]


def test_resume_continues_where_the_checkpoint_left_off(tmp_path):
    straight = Recorder()
    run_trial(_config("train.epochs=3"), straight, workdir=tmp_path / "straight")

    interrupted = Recorder()

    # The same 3-epoch trial, stopped after its second epoch (as a killed worker would be).
    class Stop(Exception):
        pass

    def stop_after_two(record, checkpoint):
        interrupted(record, checkpoint)
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        run_trial(_config("train.epochs=3"), stop_after_two, workdir=tmp_path / "cut")
    resumed = Recorder()
    run_trial(
        _config("train.epochs=3"),
        resumed,
        workdir=tmp_path / "cut",
        resume_from=tmp_path / "cut" / "checkpoint",
    )
    assert [m["epoch"] for m, _ in resumed.reports] == [3]
    assert resumed.reports[0][0]["train_loss"] == pytest.approx(
        straight.reports[2][0]["train_loss"], rel=1e-5
    )
    # Checkpoints hold tensors and plain values only: they load without unpickling code.
    final_straight = load_checkpoint(tmp_path / "straight" / "checkpoint")["model"]
    final_resumed = load_checkpoint(tmp_path / "cut" / "checkpoint")["model"]
    for key, value in final_straight.items():
        torch.testing.assert_close(final_resumed[key], value, rtol=1e-5, atol=1e-6)


def test_a_diverging_trial_ends_as_diverged(tmp_path):
    recorder = Recorder()
    result = run_trial(
        _config("lr_high=1e8", "lr_low=1e8", "train.warmup_epochs=0"), recorder, workdir=tmp_path
    )
    assert result.status == "diverged"
    assert recorder.reports[-1][0]["status"] == "diverged"
    assert len(recorder.reports) == 1


def test_impossible_settings_fail_before_training(tmp_path):
    recorder = Recorder()
    with pytest.raises(ConfigError, match="settings.reinit_layers"):
        run_trial(_config("reinit_layers=6"), recorder, workdir=tmp_path)
    assert recorder.reports == []


def test_sweep_file_round_trip(tmp_path):
    """The YAML a user writes is what the trial runs."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE))
    from nonbinary_ft.config import load_config

    assert load_config(path) == _config()


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_a_crafted_checkpoint_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "payload-ran"
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"model": _Payload(str(marker))}, folder / CHECKPOINT_FILE)
    with pytest.raises(ModelError) as refused:
        run_trial(_config(), Recorder(), workdir=tmp_path / "run", resume_from=folder)
    assert not marker.exists()
    message = str(refused.value)
    assert "\n" not in message and str(folder / CHECKPOINT_FILE) in message
    with pytest.raises(ModelError, match="no trial checkpoint there"):
        load_checkpoint(tmp_path / "absent")


def test_a_cuda_device_this_machine_lacks_is_bad_input_naming_the_file(tmp_path, monkeypatch):
    import torch
    import yaml
    from typer.testing import CliRunner

    from nonbinary_ft.cli.main import app
    from nonbinary_ft.errors import ConfigError
    from nonbinary_ft.training.device import resolve_device
    from tests.tiny import tiny_document

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="has no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    path = tmp_path / "cuda.yaml"
    path.write_text(yaml.safe_dump(tiny_document(train={"device": "cuda:1"})))
    result = CliRunner().invoke(app, ["finetune", str(path)])
    assert result.exit_code == 2
    assert f"{path}: 'train.device' must be a device this machine has" in result.stderr
