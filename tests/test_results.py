"""The sweep/report contract: files round-trip, and missing or broken parts say why."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from nonbinary_ft.errors import NbftError
from nonbinary_ft.results import (
    ANALYSIS_FILE,
    FINAL_FILE,
    TRIALS_FILE,
    AnalysisResults,
    EnvironmentInfo,
    EpochRecord,
    FinalEntry,
    Missing,
    PruningDecision,
    RegimeResult,
    ResultsError,
    ScoreValue,
    SweepResults,
    TrialResult,
    collect_environment,
    load_results,
    save_results,
)
from nonbinary_ft.vocabulary import DecisionKind

SETTINGS = {
    "reinit_layers": 2,
    "lr_high": 0.001,
    "lr_new": None,
    "low_layers": 0,
    "lr_low": None,
    "l2sp_layers": "all",
    "alpha": 0.01,
    "beta": 0.0001,
}


def _results() -> SweepResults:
    epochs = (
        EpochRecord(1, 1.2, 0.7, 0.0, 0.4, 31.5),
        EpochRecord(2, 0.9, 0.8, 0.01, 0.39, 30.5),
    )
    return SweepResults(
        source="memory",
        sweep_yaml="name: tiny\n",
        analysis=AnalysisResults(
            fixed_feature_accuracy=0.8,
            scratch_accuracy=0.6,
            gap=-0.2,
            scores={"fisher": ScoreValue(1.5), "emd": ScoreValue(None, "no source sample")},
            regime=RegimeResult("fits_well", False, "gap -0.2 < -0.02", ("EMD says far",)),
            recommended_settings=SETTINGS,
            narrowed_space="reinit_layers: 2\n",
        ),
        trials=(
            TrialResult("a", SETTINGS, "completed", None, epochs, 0.8, 62.0, 0.0, 62.0),
            TrialResult("b", SETTINGS, "pruned", "ruled out", epochs[:1], 0.7, 31.5, 1.0, 32.5),
        ),
        pruning=(
            PruningDecision(
                kind=DecisionKind.PRUNED_TRIAL,
                reason="gap -0.2: fits_well",
                settings=SETTINGS,
                trial_id="b",
                epoch=1,
                time_s=32.5,
                epochs_saved_estimate=1.0,
            ),
        ),
        final=(
            FinalEntry(SETTINGS, "best", (0, 1), (0.81, 0.83), (None, None), 0.82, 0.0141, 0.84),
        ),
        environment=EnvironmentInfo({"python": "3.11", "torch": "2.14"}, "0.1.0", (0, 1)),
    )


def test_save_then_load_round_trips(tmp_path):
    results = _results()
    save_results(tmp_path, results)
    loaded = load_results(tmp_path)
    assert loaded == dataclasses.replace(results, source=str(tmp_path))
    assert loaded.name == "tiny"


def test_files_are_strict_json_without_nan(tmp_path):
    results = _results()
    diverged = dataclasses.replace(
        results.trials[0],
        status="diverged",
        history=(EpochRecord(1, math.nan, None, math.inf, 0.4, 30.0),),
        best_val_accuracy=None,
    )
    save_results(tmp_path, dataclasses.replace(results, trials=(diverged,)))

    def reject(constant: str) -> None:
        raise AssertionError(f"{constant} in strict JSON")

    document = json.loads((tmp_path / TRIALS_FILE).read_text(), parse_constant=reject)
    assert document[0]["history"][0]["train_loss"] is None
    assert load_results(tmp_path).trials[0].history[0].l2sp_penalty is None


def test_the_documented_field_names(tmp_path):
    save_results(tmp_path, _results())
    trial = json.loads((tmp_path / TRIALS_FILE).read_text())[0]
    assert set(trial) == {
        "trial_id", "settings", "status", "prune_reason", "history", "best_val_accuracy",
        "time_s", "started_at", "ended_at", "stage", "val_accuracy", "test_accuracy",
        "node_id", "seed", "rank",
    }  # fmt: skip
    assert set(trial["history"][0]) == {
        "epoch", "train_loss", "val_accuracy", "l2sp_penalty", "l2_penalty", "epoch_time_s",
        "train_accuracy", "val_loss", "test_loss", "test_accuracy", "images_per_s", "status",
        "done",
    }  # fmt: skip
    analysis = json.loads((tmp_path / ANALYSIS_FILE).read_text())
    assert set(analysis["regime"]) == {"label", "provisional", "rule", "disagreements"}
    assert set(analysis["table1"]) == {"fixed_feature_accuracy", "from_scratch_accuracy", "gap"}
    assert analysis["scores"]["emd"] == {"value": None, "reason": "no source sample"}
    final = json.loads((tmp_path / FINAL_FILE).read_text())[0]
    assert {"settings", "label", "seeds", "test_accuracies", "mean", "std"} <= set(final)
    assert {"ensemble_accuracy", "errors"} <= set(final)
    pruning = json.loads((tmp_path / "pruning.json").read_text())[0]
    assert set(pruning) == {
        "kind", "reason", "settings", "trial_id", "epoch", "time_s", "epochs_saved_estimate",
    }  # fmt: skip


def test_missing_parts_come_back_with_their_reason(tmp_path):
    results = dataclasses.replace(
        _results(),
        final=Missing("every final run failed"),
        analysis=dataclasses.replace(
            _results().analysis,
            scratch_accuracy=Missing("not run: --no-scratch"),
            gap=Missing("needs the from-scratch accuracy"),
        ),
    )
    save_results(tmp_path, results)
    (tmp_path / "environment.json").unlink()
    (tmp_path / "pruning.json").write_text('[{"trial_id": "b", "time_s": ')  # cut mid-write
    loaded = load_results(tmp_path)
    assert loaded.final == Missing("every final run failed")
    assert loaded.analysis.scratch_accuracy == Missing("not run: --no-scratch")
    assert isinstance(loaded.analysis.gap, Missing)
    assert isinstance(loaded.environment, Missing)
    assert "environment.json not written" in loaded.environment.reason
    assert isinstance(loaded.pruning, Missing) and "unreadable" in loaded.pruning.reason


def test_a_malformed_entry_marks_the_file_unreadable(tmp_path):
    save_results(tmp_path, _results())
    (tmp_path / TRIALS_FILE).write_text('[{"settings": {}}]')  # no trial_id
    trials = load_results(tmp_path).trials
    assert isinstance(trials, Missing) and "entry 0" in trials.reason


@pytest.mark.parametrize("make", ["empty", "absent", "unrelated"])
def test_a_folder_that_is_not_a_sweep_raises_one_line(tmp_path, make):
    folder = tmp_path / "folder"
    if make != "absent":
        folder.mkdir()
    if make == "unrelated":
        (folder / "notes.txt").write_text("hello")
    with pytest.raises(ResultsError) as raised:
        load_results(folder)
    assert isinstance(raised.value, NbftError)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{folder} is not a sweep folder")
    if make != "absent":
        assert message == f"{folder} is not a sweep folder: no sweep.yaml or trials.json"


def test_trials_alone_make_a_sweep_folder(tmp_path):
    save_results(tmp_path, dataclasses.replace(_results(), sweep_yaml=Missing("not saved")))
    loaded = load_results(tmp_path)
    assert isinstance(loaded.sweep_yaml, Missing) and loaded.name is None
    assert len(loaded.trials) == 2


def test_lenient_reading_of_what_the_writer_left_out(tmp_path: Path):
    (tmp_path / TRIALS_FILE).write_text(
        json.dumps(
            [
                {
                    "trial_id": 7,
                    "settings": {"lr_high": 0.1},
                    "status": "early_stopped",
                    "history": [{"epoch": 1, "val_accuracy": 0.5, "epoch_time_s": 10}],
                },
                {"trial_id": "x", "settings": {}, "status": "exploded"},
            ]
        )
    )
    (tmp_path / FINAL_FILE).write_text(
        json.dumps(
            [
                {
                    "settings": {},
                    "label": "best",
                    "seeds": [0, 1, 2],
                    "test_accuracies": [0.8, None, 0.9],
                    "errors": [None, "OOM", None],
                }
            ]
        )  # fmt: skip
    )
    loaded = load_results(tmp_path)
    first, second = loaded.trials
    assert first.trial_id == "7" and first.status == "early_stopped"
    assert first.best_val_accuracy == 0.5 and first.time_s == 10.0
    assert second.status == "error"
    entry = loaded.final[0]
    assert entry.mean == pytest.approx(0.85)
    assert entry.std == pytest.approx(math.sqrt(((0.8 - 0.85) ** 2 + (0.9 - 0.85) ** 2) / 1))
    assert entry.errors == (None, "OOM", None)


def test_the_recommend_document_is_accepted(tmp_path):
    """``nbft recommend``'s analysis.json (AnalysisReport.to_dict) converts on load."""
    document = {
        "name": "tiny",
        "table1": {
            "fixed_feature_accuracy": 0.7,
            "from_scratch_accuracy": None,
            "gap": None,
            "fisher": 0.9,
            "emd_similarity": None,
        },
        "regime": {"label": "fits_poorly", "provisional": True, "rule": "Fisher 0.9 < 1.15",
                   "disagreements": []},
        "recommendation": {"settings": {"reinit_layers": 1, "lr_high": 0.02},
                           "space": {"lr_high": {"type": "float", "low": 0.01, "high": 0.1}}},
        "scratch_note": "not run: --no-scratch",
        "scores": {"fisher": {"value": 0.9, "reason": None, "higher_is_better": True}},
    }  # fmt: skip
    (tmp_path / "sweep.yaml").write_text("name: tiny\n")
    (tmp_path / ANALYSIS_FILE).write_text(json.dumps(document))
    analysis = load_results(tmp_path).analysis
    assert analysis.regime == RegimeResult("fits_poorly", True, "Fisher 0.9 < 1.15", ())
    assert analysis.fixed_feature_accuracy == 0.7
    assert analysis.scratch_accuracy == Missing("not run: --no-scratch")
    assert analysis.recommended_settings == {"reinit_layers": 1, "lr_high": 0.02}
    assert "lr_high:" in analysis.narrowed_space and analysis.scores["fisher"].value == 0.9


def test_collect_environment():
    environment = collect_environment(seeds=(0, 1), started_at="2025-01-01T00:00:00")
    assert set(environment.packages) == {"python", "torch", "timm", "ray", "optuna", "mlflow"}
    assert environment.packages["python"].count(".") == 2
    assert environment.code_version.startswith("0.")
    assert environment.seeds == (0, 1) and environment.hostname
