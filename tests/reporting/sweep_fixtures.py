"""A finished tiny sweep built in code: 13 trials, pruning decisions, final runs, analysis.

The numbers are chosen so that every plot has data: lr_high and reinit_layers vary (figure 2),
low_layers with lr_low (figure 3), alpha and l2sp_layers (figures 4, 5), a best and a binary
default final entry with three seeds (figure 6); two trials are pruned, one stopped by the
scheduler, one diverged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from nonbinary_ft.results import (
    AnalysisResults,
    EnvironmentInfo,
    EpochRecord,
    FinalEntry,
    Missing,
    PruningDecision,
    RegimeResult,
    ScoreValue,
    SweepResults,
    TrialResult,
)
from nonbinary_ft.vocabulary import DecisionKind
from tests.tiny import tiny_document

SWEEP = tiny_document(
    name="tiny-sweep",
    train={"epochs": 4},
    settings={"reinit_layers": 1, "lr_high": 0.01},
    sweep={"final": {"top_n": 1, "seeds": [0, 1, 2]}},
)
BASE = {
    "reinit_layers": 1,
    "lr_high": 0.01,
    "lr_new": None,
    "low_layers": 0,
    "lr_low": None,
    "l2sp_layers": 0,
    "alpha": 0.01,
    "beta": 0.0001,
}
# (trial id, settings patch, status, best val accuracy, epochs run)
TRIALS: list[tuple[str, dict[str, Any], str, float | None, int]] = [
    ("t01", {"lr_high": 0.01}, "completed", 0.80, 4),
    ("t02", {"lr_high": 0.001}, "completed", 0.84, 4),
    ("t03", {"reinit_layers": 2, "lr_high": 0.01}, "completed", 0.82, 4),
    ("t04", {"reinit_layers": 2, "lr_high": 0.001}, "completed", 0.87, 4),
    ("t05", {"low_layers": 4, "lr_low": 0.004}, "completed", 0.83, 4),
    ("t06", {"low_layers": 8, "lr_low": 0.004}, "completed", 0.81, 4),
    ("t07", {"reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": 4}, "completed", 0.88, 4),
    (
        "t08",
        {"reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": 4, "alpha": 0.001},
        "completed",
        0.885,
        4,
    ),
    ("t09", {"reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": "all"}, "completed", 0.89, 4),
    ("t10", {"reinit_layers": 3, "lr_high": 0.01}, "pruned", 0.70, 2),
    ("t11", {"lr_high": 0.05, "low_layers": 4, "lr_low": 0.02}, "pruned", 0.65, 1),
    ("t12", {"lr_high": 0.1}, "diverged", None, 2),
    ("t13", {"reinit_layers": 3, "lr_high": 0.001}, "stopped", 0.78, 2),
]
EPOCH_S = 30.0
BEST_ACCURACIES = (0.874, 0.881, 0.869)
DEFAULT_ACCURACIES = (0.842, 0.851, 0.838)


def _history(best: float | None, epochs: int, status: str, l2sp: bool) -> tuple:
    rows = []
    for index in range(epochs):
        diverged = status == "diverged" and index > 0
        rows.append(
            EpochRecord(
                epoch=index + 1,
                train_loss=None if diverged else 1.5 - 0.25 * index,
                val_accuracy=None if best is None else best - 0.03 * (epochs - 1 - index),
                l2sp_penalty=0.01 * index if l2sp else 0.0,
                l2_penalty=0.5 - 0.05 * index,
                epoch_time_s=EPOCH_S,
            )
        )
    return tuple(rows)


def make_trials() -> tuple[TrialResult, ...]:
    """The trials, run two at a time (start/end in seconds since the sweep started)."""
    clocks = [0.0, 0.0]
    trials = []
    for index, (trial_id, patch, status, best, epochs) in enumerate(TRIALS):
        settings = {**BASE, **patch}
        worker = index % 2
        time_s = EPOCH_S * epochs
        start = clocks[worker]
        clocks[worker] += time_s
        trials.append(
            TrialResult(
                trial_id=trial_id,
                settings=settings,
                status=status,  # type: ignore[arg-type]
                prune_reason="fits_well: lr_high >= 0.01 ruled out" if status == "pruned" else None,
                history=_history(best, epochs, status, settings["l2sp_layers"] != 0),
                best_val_accuracy=best,
                time_s=time_s,
                started_at=start,
                ended_at=start + time_s,
            )
        )
    return tuple(trials)


def _mean_std(values: tuple[float, ...]) -> tuple[float, float]:
    import statistics

    return statistics.mean(values), statistics.stdev(values)


def make_final() -> tuple[FinalEntry, ...]:
    """The best settings (t09's) and the binary baseline, three seeds each."""
    best_settings = {**BASE, "reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": "all"}
    mean, std = _mean_std(BEST_ACCURACIES)
    dmean, dstd = _mean_std(DEFAULT_ACCURACIES)
    return (
        FinalEntry(
            best_settings, "best", (0, 1, 2), BEST_ACCURACIES, (None,) * 3, mean, std, 0.893
        ),
        FinalEntry(
            dict(BASE),
            "binary baseline",
            (0, 1, 2),
            DEFAULT_ACCURACIES,
            (None,) * 3,
            dmean,
            dstd,
            0.856,
        ),
    )


def make_analysis() -> AnalysisResults:
    """Weights fit well: the gap is -16 points; EMD disagrees."""
    return AnalysisResults(
        fixed_feature_accuracy=0.78,
        scratch_accuracy=0.62,
        gap=0.62 - 0.78,
        scores={
            "fisher": ScoreValue(1.6),
            "emd": ScoreValue(0.55),
            "logme": ScoreValue(1.234),
            "leep": ScoreValue(None, "no source head: the model has no ImageNet classifier"),
        },
        regime=RegimeResult(
            name="fits_well",
            provisional=False,
            rule="gap = scratch - fixed = 0.6200 - 0.7800 = -0.1600: < -0.02 -> fits_well",
            disagreements=("EMD similarity 0.55 says the domains are far; the gap decides",),
        ),
        recommended_settings={**BASE, "reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": "all"},
        narrowed_space="reinit_layers: {type: int, low: 2, high: 3}\n",
    )


def make_pruning() -> tuple[PruningDecision, ...]:
    """Two trials stopped by the policy, one region no longer sampled."""
    evidence = "(gap=-0.16, fisher=1.6)"
    return (
        PruningDecision(
            kind=DecisionKind.PRUNED_TRIAL,
            reason=f"fits_well: lr_high >= 0.01 ruled out {evidence}",
            settings={**BASE, "reinit_layers": 3},
            trial_id="t10",
            epoch=2,
            time_s=200.0,
            epochs_saved_estimate=2.0,
        ),
        PruningDecision(
            kind=DecisionKind.PRUNED_TRIAL,
            reason=f"fits_well: lr_high >= 0.01 ruled out {evidence}",
            settings={**BASE, "lr_high": 0.05, "low_layers": 4, "lr_low": 0.02},
            trial_id="t11",
            epoch=1,
            time_s=330.0,
            epochs_saved_estimate=3.0,
        ),
        PruningDecision(
            kind=DecisionKind.PRUNED_SAMPLE,
            reason="fits_well: low_layers > 0 no longer sampled (gap -0.16 < -0.02)",
            settings={"low_layers": 4},
            time_s=240.0,
            epochs_saved_estimate=8.0,
        ),
    )


def make_results() -> SweepResults:
    """The whole finished tiny sweep."""
    return SweepResults(
        source="tests/reporting (in code)",
        sweep_yaml=yaml.safe_dump(SWEEP, sort_keys=False),
        analysis=make_analysis(),
        trials=make_trials(),
        pruning=make_pruning(),
        final=make_final(),
        environment=EnvironmentInfo(
            packages={
                "python": "3.11.2",
                "torch": "2.14.0",
                "timm": "1.0.20",
                "ray": "2.60.0",
                "optuna": "5.0.0",
                "mlflow": "3.17.2",
            },
            code_version="0.1.0 (ccf7473)",
            seeds=(0, 1, 2),
            hostname="test-host",
            started_at="2025-01-01T00:00:00+00:00",
            ended_at="2025-01-01T00:12:00+00:00",
        ),
    )


def make_partial() -> SweepResults:
    """No from-scratch baseline (provisional regime) and a final run whose seed 2 failed."""
    full = make_results()
    analysis = dataclasses.replace(
        make_analysis(),
        scratch_accuracy=Missing("not run: the sweep had analysis.scratch.enabled = false"),
        gap=Missing("needs both the fixed-feature and the from-scratch accuracy"),
        regime=RegimeResult("fits_well", True, "normalised Fisher score 1.6 > 1.35 -> fits_well"),
    )
    best, default = make_final()
    failed = dataclasses.replace(
        best,
        test_accuracies=(0.874, 0.881, None),
        errors=(None, None, "worker died: CUDA out of memory"),
        mean=(0.874 + 0.881) / 2,
        std=0.004949747468305837,
        ensemble_accuracy=None,
        ensemble_reason="the ensemble needs every seed; seed 2 failed",
    )
    return dataclasses.replace(
        full,
        analysis=analysis,
        final=(failed, default),
        environment=Missing("environment.json not written (the sweep was interrupted)"),
    )
