"""The sweep plan (--dry-run): spaces from files, trial counts, resources and the estimate."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from nonbinary_ft.config import ExperimentConfig, load_config
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.results import TrialResult
from nonbinary_ft.tuning.final import ensemble_accuracy, final_points
from nonbinary_ft.tuning.plan import StorageLocation, asha_expected_epochs, plan_sweep

GRID = {"name": "g", "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02, 0.03]}}}
RANGE = {"name": "r", "parameters": {"lr_high": {"type": "float", "low": 0.01, "high": 0.1}}}


def test_asha_expected_epochs():
    assert asha_expected_epochs(4, 1, 3) == pytest.approx(1 + 2 / 3 + 1 / 9)
    assert asha_expected_epochs(2, 2, 3) == 2.0  # no rung below the end: every epoch runs


def test_grid_plan_counts_trials_resources_and_gpu_hours(tmp_path, make_config):
    config = make_config(
        tmp_path,
        space=GRID,
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 2, "gpus": 0.5},
        budget={"epoch_time_s": 90},
        final={"top_n": 2, "seeds": [0, 1, 2]},
    )
    plan = plan_sweep(config, None)
    assert plan.num_layers == 6 and plan.num_trials == 3 and len(plan.grid) == 3
    assert plan.resources == {"CPU": 2.0, "GPU": 0.5}
    # Every stage: (3 search + 2 x 3 final + at most 3 baseline rates x 3 seeds) trials x 2
    # epochs, plus the from-scratch run's epochs, x 90 s (x 0.5 GPU).
    scratch = config.analysis.scratch.epochs
    assert config.analysis.in_sweep and config.analysis.scratch.enabled and scratch > 0
    assert plan.cost.final_trials == 6 and plan.cost.baseline_trials_max == 9
    assert plan.cost.scratch_epochs == scratch
    epochs = (3 + 6 + 9) * 2 + scratch
    assert plan.cost.trial_hours == pytest.approx(epochs * 90 / 3600, abs=1e-3)
    assert plan.cost.gpu_hours == pytest.approx(epochs * 90 / 3600 * 0.5, abs=1e-3)
    # Without the scratch run in the sweep, its epochs leave the estimate.
    analysis = config.analysis.model_copy(update={"in_sweep": False})
    without = plan_sweep(config.model_copy(update={"analysis": analysis}), None)
    assert without.cost.scratch_epochs == 0
    assert without.cost.trial_hours == pytest.approx((epochs - scratch) * 90 / 3600, abs=1e-3)
    assert plan.tracking_uri == f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'mlflow.db'}"


@pytest.mark.parametrize(
    ("algorithm", "analysis", "expected"),
    [
        (None, {}, "after_search"),  # the default search never looks at the evidence
        ("tpe", {}, "after_search"),
        ("nbft", {}, "with_search"),  # its first trials wait for the cheap evidence
        ("tpe", {"veto": True}, "with_search"),  # the veto prunes on the regime
        (None, {"when": "with_search"}, "with_search"),
        ("tpe", {"in_sweep": False}, "off"),
    ],
)
def test_stage_one_runs_with_the_search_only_when_the_search_acts_on_it(
    tmp_path, make_document, algorithm, analysis, expected
):
    search = {"algorithm": algorithm} if algorithm else {}
    document = make_document(tmp_path, space=RANGE, search=search)
    document["analysis"].update(analysis)
    plan = plan_sweep(ExperimentConfig.model_validate(document), None)
    assert plan.stage_one == expected
    assert plan.to_dict()["stage_one"] == expected


@pytest.mark.parametrize("conflict", [{"search": {"algorithm": "nbft"}}, {"veto": True}])
def test_stage_one_after_a_search_that_acts_on_it_is_refused(tmp_path, make_document, conflict):
    document = make_document(tmp_path, space=RANGE, search=conflict.get("search", {}))
    document["analysis"].update({"when": "after_search", "veto": conflict.get("veto", False)})
    with pytest.raises(ConfigError) as info:
        plan_sweep(ExperimentConfig.model_validate(document), "sweep.yaml")
    assert info.value.field == "analysis.when" and "sweep.yaml" in str(info.value)
    assert "'with_search' or 'auto'" in str(info.value)


def test_space_file_is_found_next_to_the_sweep_file(tmp_path, make_document):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "g.yaml").write_text(yaml.safe_dump(GRID))
    sweep_file = tmp_path / "sweep.yaml"
    document = make_document(tmp_path, space="spaces/g.yaml", search={"algorithm": "grid"})
    sweep_file.write_text(yaml.safe_dump(document))
    assert plan_sweep(load_config(sweep_file), sweep_file).num_trials == 3


RANGE = {"name": "lr", "parameters": {"lr_high": {"type": "float", "low": 0.01, "high": 0.1}}}


@pytest.mark.parametrize(
    ("sweep", "field"),
    [
        ({}, "sweep.space"),
        ({"space": "nowhere.yaml"}, "sweep.space"),
        ({"space": GRID}, "sweep.space.parameters.lr_high"),  # a grid with search 'tpe'
        (
            {"space": GRID, "search": {"algorithm": "grid"}, "scheduler": {"grace_period": 5}},
            "sweep.scheduler.grace_period",
        ),
        # Past the last epoch (2) with the default search, whose scheduler is RUSH, not ASHA.
        ({"space": RANGE, "scheduler": {"grace_period": 3}}, "sweep.scheduler.grace_period"),
    ],
)
def test_plan_errors_name_the_key(tmp_path, make_config, sweep, field):
    with pytest.raises(ConfigError) as caught:
        plan_sweep(make_config(tmp_path, **sweep), tmp_path / "sweep.yaml")
    assert caught.value.field == field


def test_s3_storage_uses_an_explicit_endpoint(tmp_path, make_config):
    config = make_config(
        tmp_path,
        space=GRID,
        storage={"path": "s3://bucket/sweeps", "endpoint_url": "http://minio:9000"},
    )
    storage = StorageLocation.from_config(config)
    assert storage.experiment_uri("search") == "s3://bucket/sweeps/tiny/search"
    path, filesystem = storage.ray_storage()
    assert path == "bucket/sweeps/tiny" and type(filesystem).__name__ == "S3FileSystem"
    assert storage.local_dir.name == "tiny"  # MLflow's default database stays local
    with pytest.raises(ValidationError, match="endpoint_url"):
        ExperimentConfig.model_validate(
            {**config.model_dump(mode="json"), "sweep": {"storage": {"path": "s3://b/p"}}}
        )


def test_ensemble_averages_the_softmax_of_the_seed_models():
    labels = np.array([0, 1, 1])
    first = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])  # 2/3 right
    second = np.array([[0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])  # 2/3 right
    assert ensemble_accuracy([first, second], labels) == 1.0  # the average gets all three
    with pytest.raises(ValueError):
        ensemble_accuracy([first[:2], second], labels)


def test_final_runs_take_distinct_top_settings_with_every_seed():
    def trial(trial_id, lr, val, status="completed"):
        return TrialResult(trial_id, {"lr_high": lr}, status, val_accuracy=val)

    trials = [
        trial("a", 0.1, 0.5),
        trial("b", 0.2, 0.9),
        trial("c", 0.2, 0.8),
        trial("d", 0.3, 0.7),
        trial("e", 0.4, 0.99, "pruned"),
    ]
    points = final_points(trials, 2, (0, 1))
    assert [(p["lr_high"], p["train_seed"], p["final_rank"]) for p in points] == [
        (0.2, 0, 1),
        (0.2, 1, 1),
        (0.3, 0, 2),
        (0.3, 1, 2),
    ]


def test_the_sweep_files_own_settings_must_fit_the_model_before_the_search(tmp_path, make_document):
    # The space samples k; the file's own settings (stage 3's baseline) ask for 999 layers.
    document = make_document(
        tmp_path,
        space={"name": "k", "parameters": {"reinit_layers": {"type": "int", "low": 1, "high": 2}}},
    )
    document["settings"] = {"reinit_layers": 999}
    with pytest.raises(ConfigError) as caught:
        plan_sweep(ExperimentConfig.model_validate(document), tmp_path / "sweep.yaml")
    assert caught.value.field == "settings.reinit_layers"
    assert "stage 3's baseline" in str(caught.value)


def test_a_grid_too_large_to_enumerate_is_refused_with_its_size(tmp_path, make_config):
    huge = {
        "name": "huge",
        "parameters": {
            "lr_high": {"type": "grid", "values": [0.001 * i for i in range(1, 1001)]},
            "alpha": {"type": "grid", "values": [0.001 * i for i in range(1, 1001)]},
            "beta": {"type": "grid", "values": [0.001 * i for i in range(1, 1001)]},
        },
    }
    config = make_config(tmp_path, space=huge, search={"algorithm": "grid"})
    with pytest.raises(ConfigError, match="1,000,000,000 combinations"):
        plan_sweep(config, None)
