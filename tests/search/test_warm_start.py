"""Warm starts: the nearest past sweeps' winners, in turns, fitted to the new space."""

from __future__ import annotations

import math

import pytest

from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.config.space import parse_space
from nonbinary_ft.search.algorithms import get_algorithm, warm_start_trials
from nonbinary_ft.search.warm_start import (
    EvidenceVector,
    PastSweep,
    WarmPoint,
    first_trials,
    fit_to_space,
    nearest_sweeps,
    warm_start_points,
)


def _past(name: str, accuracy: float, fisher: float, lrs: list[float]) -> PastSweep:
    ranked = tuple(({"reinit_layers": 1, "lr_high": lr}, 0.9 - 0.1 * i) for i, lr in enumerate(lrs))
    return PastSweep(name, EvidenceVector(accuracy, fisher), ranked)


HISTORY = (
    _past("far", 0.2, 0.3, [0.3, 0.1]),
    _past("near", 0.8, 10.0, [0.01, 0.003, 0.03]),
    _past("nearish", 0.7, 5.0, [0.003, 0.001]),
)


def test_the_evidence_reads_from_an_analysis_document_and_refuses_what_it_cannot_use():
    assert EvidenceVector.from_document(
        {"table1": {"fixed_feature_accuracy": 0.5, "fisher": 2.0}}
    ) == EvidenceVector(0.5, 2.0)
    for table1 in ({"fixed_feature_accuracy": 0.5}, {"fixed_feature_accuracy": 0.5, "fisher": 0},
                   {"fixed_feature_accuracy": math.nan, "fisher": 1.0}):  # fmt: skip
        assert EvidenceVector.from_document({"table1": table1}) is None
    assert EvidenceVector.from_document(None) is None


def test_distance_scales_accuracy_and_decades_of_fisher():
    here = EvidenceVector(0.5, 1.0)
    assert here.distance(EvidenceVector(0.8, 1.0)) == pytest.approx(1.0)  # 0.3 of accuracy
    assert here.distance(EvidenceVector(0.5, 10**0.5)) == pytest.approx(1.0)  # half a decade


def test_the_nearest_sweeps_come_first():
    names = [past.name for past in nearest_sweeps(EvidenceVector(0.78, 9.0), HISTORY, 3)]
    assert names == ["near", "nearish", "far"]


def test_first_points_take_turns_between_the_two_nearest_without_repeats():
    points = warm_start_points(EvidenceVector(0.78, 9.0), HISTORY, count=4)
    # near #1, nearish #1, near #2 (0.003: already in, skipped), nearish #2, near #3
    assert [p.settings["lr_high"] for p in points] == [0.01, 0.003, 0.001, 0.03]
    assert [(p.sweep, p.rank) for p in points] == [
        ("near", 1), ("nearish", 1), ("nearish", 2), ("near", 3)
    ]  # fmt: skip
    assert "#1 of past sweep near (0.900" in points[0].reason
    assert warm_start_points(EvidenceVector(0.78, 9.0), (), count=4) == []
    assert len(warm_start_points(None, HISTORY, count=10)) == 5  # the history's first two


def test_past_settings_are_fitted_into_the_new_space_and_model():
    space = parse_space(
        {
            "name": "fit",
            "parameters": {
                "reinit_layers": {"type": "int", "low": 1, "high": 3},
                "lr_high": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
                "l2sp_layers": {"type": "choice", "values": [0, 2, "all"]},
                "alpha": {"type": "choice", "values": [0.01, 0.1]},
            },
        }
    )
    base = TrialSettings()
    past = {"reinit_layers": 5, "lr_high": 0.3, "l2sp_layers": 3, "alpha": 0.05}
    fitted = fit_to_space(past, space, num_layers=6, base=base)
    # k clipped to the range, lr to its bound, m to the nearest choice, alpha (log) too
    assert fitted == {"reinit_layers": 3, "lr_high": 0.05, "l2sp_layers": 2, "alpha": 0.1}
    assert fit_to_space(past, space, num_layers=3, base=base)["reinit_layers"] == 2  # k <= L-1


# L2-SP on no layer or on all: its strength alpha matters only with layers.
ALPHA_SPACE = parse_space(
    {
        "name": "alpha",
        "parameters": {
            "lr_high": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "l2sp_layers": {"type": "choice", "values": [0, "all"]},
            "alpha": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
        },
    }
)


def test_first_trials_that_train_the_same_way_run_once():
    points = [
        WarmPoint({"lr_high": 0.01, "l2sp_layers": 0, "alpha": 0.01}, "a", 1, 0.9, None),
        # Without L2-SP layers alpha changes nothing: the same training, not a second trial.
        WarmPoint({"lr_high": 0.01, "l2sp_layers": 0, "alpha": 0.1}, "a", 2, 0.9, None),
        WarmPoint({"lr_high": 0.01, "l2sp_layers": "all", "alpha": 0.1}, "a", 3, 0.8, None),
    ]
    chosen = first_trials(points, ALPHA_SPACE, num_layers=6, base=TrialSettings())
    assert [first.point.rank for first in chosen] == [1, 3]


def test_a_warm_start_fills_its_count_when_fitting_merges_past_settings():
    # Best first: L2-SP on 0 layers, then on 2, which this space lacks: fitted to 0 they
    # train as the first (alpha changes nothing without L2-SP layers).
    ranked = tuple(
        ({"lr_high": 0.01, "l2sp_layers": l2sp, "alpha": alpha}, 0.9 - 0.1 * index)
        for index, (l2sp, alpha) in enumerate([(0, 0.01), (2, 0.1), (2, 1.0), ("all", 0.1)])
    )
    history = [PastSweep("a", EvidenceVector(0.5, 1.0), ranked, source="a", model="m")]
    algorithm = get_algorithm("zero_shot_model")
    chosen = warm_start_trials(algorithm, None, history, 2, "m", ALPHA_SPACE, 6, TrialSettings())
    assert [first.settings["l2sp_layers"] for first in chosen] == [0, "all"]
