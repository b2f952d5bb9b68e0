"""The end of a sweep: its results files, the report, and their MLflow copies.

One tiny sweep (two grid trials, two seeds for the best and for the binary default) feeds
every test; the label and point rules are also checked on their own, without Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.config.settings import same_settings
from nonbinary_ft.results import (
    BEST_LABEL,
    BINARY_DEFAULT_LABEL,
    RESULTS_FILES,
    Missing,
    SweepResults,
    TrialResult,
    is_missing,
    load_results,
    save_results,
)
from nonbinary_ft.tuning.final import (
    BASELINE_LR_FACTORS,
    Baseline,
    binary_baseline,
    final_entries,
    final_points,
)
from nonbinary_ft.tuning.orchestrate import run_sweep
from nonbinary_ft.tuning.publish import NO_ANALYSIS, analysis_results
from nonbinary_ft.vocabulary import Stage

CONTRACT = RESULTS_FILES
SEEDS = [0]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, make_document) -> tuple[Any, Path, ExperimentConfig]:
    """A finished tiny sweep: its result, run folder and config."""
    tmp_path = tmp_path_factory.mktemp("results")
    document = make_document(
        tmp_path,
        "written",
        # Every point is binary (head only, one LR, plain L2): the best is the baseline too.
        space={"name": "lrs", "parameters": {"lr_high": {"type": "grid", "values": [0.02, 0.05]}}},
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 1, "max_concurrent": 2},
        final={"top_n": 1, "seeds": SEEDS},
    )
    document["analysis"] = {"in_sweep": False}
    source = tmp_path / "written.yaml"
    source.write_text(yaml.safe_dump(document))
    config = ExperimentConfig.model_validate(document)
    result = run_sweep(config, source=source)
    return result, tmp_path / "runs" / "written", config


def test_every_contract_file_is_written_and_read_back(swept):
    result, folder, _ = swept
    for name in CONTRACT:
        assert (folder / name).is_file(), name
    results = load_results(folder)
    assert is_missing(results.analysis), "stage 1 was off: analysis.json says so"
    assert "did not run" in results.analysis.reason
    for part in (results.sweep_yaml, results.trials, results.pruning, results.final):
        assert not is_missing(part), part
    assert not is_missing(results.environment)
    assert results.environment.mlflow["parent_run_id"] == result.parent_run_id
    assert results.name == "written"


def test_trials_hold_each_epochs_history(swept):
    _, folder, config = swept
    trials = load_results(folder).trials
    assert len(trials) == 2
    for trial in trials:
        assert trial.status == "completed"
        assert [e.epoch for e in trial.history] == list(range(1, config.train.epochs + 1))
        assert all(e.val_accuracy is not None and e.train_loss is not None for e in trial.history)
        assert all(e.epoch_time_s and e.epoch_time_s > 0 for e in trial.history)
        assert trial.best_val_accuracy == max(e.val_accuracy for e in trial.history)
        assert 0 <= trial.started_at < trial.ended_at


def test_final_has_the_best_and_the_binary_baseline_with_each_seeds_accuracy(swept):
    result, folder, config = swept
    final = {entry.label: entry for entry in load_results(folder).final}
    assert set(final) == {BEST_LABEL, BINARY_DEFAULT_LABEL}
    assert final[BEST_LABEL].settings["lr_high"] == result.best.settings["lr_high"]
    assert same_settings(final[BINARY_DEFAULT_LABEL].settings, result.best.settings)
    assert "best binary setting of the search" in final[BINARY_DEFAULT_LABEL].basis
    for entry in final.values():
        assert list(entry.seeds) == SEEDS
        assert len(entry.test_accuracies) == len(SEEDS)
        assert all(0 <= acc <= 1 for acc in entry.test_accuracies)
        assert entry.mean is not None and entry.ensemble_accuracy is not None


def test_report_is_written_and_everything_is_logged_to_the_parent_run(swept):
    result, folder, _ = swept
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    assert result.published.report_html == folder / "report.html"
    assert result.published.logged_to_mlflow and not result.published.notes
    assert result.to_dict()["report"]["mlflow_ui_command"].startswith("mlflow ui ")
    client = MlflowClient(result.tracking_uri)
    logged = {Path(f.path).name for f in client.list_artifacts(result.parent_run_id, "results")}
    assert set(CONTRACT) <= logged
    report = {Path(f.path).name for f in client.list_artifacts(result.parent_run_id, "report")}
    assert "report.html" in report


# --- without Ray -------------------------------------------------------------------------------

DEFAULT = {"reinit_layers": 1, "lr_high": 0.01, "low_layers": 0, "l2sp_layers": 0, "beta": 1e-4}


def _trial(trial_id: str, val: float, **settings: Any) -> TrialResult:
    return TrialResult(trial_id, {**DEFAULT, **settings}, "completed", val_accuracy=val)


def test_the_baseline_gets_its_own_ranks_unless_it_is_a_top_setting():
    trials = [_trial("a", 0.9, lr_high=0.05), _trial("b", 0.8, lr_new=0.01, alpha=0.3)]
    candidates = (DEFAULT, {**DEFAULT, "lr_high": 0.1})
    points = final_points(trials, 1, (0, 1), candidates)
    assert [(p["final_rank"], p["train_seed"]) for p in points] == [
        (1, 0), (1, 1), (0, 0), (0, 1), (-1, 0), (-1, 1)
    ]  # fmt: skip
    # lr_new = lr_high and alpha without L2-SP change nothing: "b" is a baseline candidate.
    points = final_points(trials, 2, (0,), candidates)
    assert [p["final_rank"] for p in points] == [1, 2]
    assert final_points([], 1, (0,), candidates) == []


def test_the_baseline_is_the_searchs_best_binary_point(tmp_path, make_config):
    config = make_config(tmp_path)
    trials = [
        _trial("a", 0.9, reinit_layers=2),
        _trial("b", 0.7, lr_high=0.05),
        _trial("c", 0.8, lr_high=0.002),
        _trial("d", 0.95, l2sp_layers="all"),
    ]
    baseline = binary_baseline(trials, config)
    assert baseline.candidates == ({**DEFAULT, "lr_high": 0.002},)
    assert "best binary setting of the search" in baseline.basis and "0.800" in baseline.basis


def test_without_a_binary_point_the_baseline_searches_its_own_learning_rate(tmp_path, make_config):
    config = make_config(tmp_path)
    lr = config.settings.lr_high
    baseline = binary_baseline([_trial("a", 0.9, reinit_layers=2)], config)
    assert [c["lr_high"] for c in baseline.candidates] == pytest.approx(
        [lr * factor for factor in BASELINE_LR_FACTORS]
    )
    assert all(c["reinit_layers"] == 1 and c["l2sp_layers"] == 0 for c in baseline.candidates)
    # Stage 3 keeps the candidate with the best validation accuracy, under the baseline's label.
    runs = [
        TrialResult(f"f{rank}{seed}", {**DEFAULT, "lr_high": lr}, "completed", stage=Stage.FINAL,
                    val_accuracy=val, test_accuracy=val - 0.1, seed=seed, rank=rank)
        for rank, val, lr in ((1, 0.9, 0.3), (0, 0.5, 0.01), (-1, 0.7, 0.1), (-2, 0.2, 1.0))
        for seed in (0, 1)
    ]  # fmt: skip
    entries = final_entries(runs, [], {}, baseline, (0, 1))
    assert [(e.label, e.settings["lr_high"]) for e in entries] == [
        (BEST_LABEL, 0.3), (BINARY_DEFAULT_LABEL, 0.1)
    ]  # fmt: skip
    assert entries[1].basis == baseline.basis and entries[1].mean == pytest.approx(0.6)


def test_a_best_setting_that_is_the_baseline_is_labelled_both(tmp_path, make_config):
    config = make_config(tmp_path)
    settings = config.settings.model_dump()
    final_trials = [
        TrialResult(f"f1{seed}", settings, "completed", stage=Stage.FINAL, test_accuracy=acc,
                    seed=seed, rank=1)
        for seed, acc in ((0, 0.5), (1, 0.7))
    ]  # fmt: skip
    baseline = Baseline((settings,), "the sweep file's")
    entries = final_entries(final_trials, [], {}, baseline, (0, 1))
    empty = SweepResults("memory", "name: n\n", Missing("-"), (), (), tuple(entries), Missing("-"))
    save_results(tmp_path, empty)
    entries = load_results(tmp_path).final
    assert [e.label for e in entries] == [BEST_LABEL, BINARY_DEFAULT_LABEL]
    assert entries[1].basis == "the sweep file's"
    assert entries[0].test_accuracies == entries[1].test_accuracies == (0.5, 0.7)
    assert entries[0].mean == pytest.approx(0.6) and entries[0].ensemble_reason


def test_a_failed_analysis_actor_becomes_a_missing_marker():
    class Broken:
        def document(self) -> dict:
            raise RuntimeError("actor died\nstack")

    assert analysis_results(None) == Missing(NO_ANALYSIS)
    assert analysis_results(Broken()) == Missing("the analysis actor failed: actor died")
