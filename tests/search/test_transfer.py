"""Evidence-blind transfer from past sweeps (zero-shot portfolio, bounding box), and the
registry of search algorithms."""

from __future__ import annotations

import typing

import pytest

from nonbinary_ft.config.space import Choice, FloatRange, IntRange, parse_space
from nonbinary_ft.config.sweep import SearchConfig
from nonbinary_ft.search.algorithms import ALGORITHMS, first_points, get_algorithm
from nonbinary_ft.search.transfer import bounding_box, model_family, zero_shot_points
from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep


def _past(name: str, rows: list[tuple[float, float]], model: str = "m") -> PastSweep:
    ranked = tuple(({"lr_high": lr}, value) for lr, value in rows)
    return PastSweep(name, EvidenceVector(0.5, 1.0), ranked, source=name, model=model)


def test_the_zero_shot_portfolio_takes_the_best_on_average_then_what_adds_most():
    # 0.1 wins on a and b, 0.01 on c; 0.03 is a close second everywhere: the best on
    # average (normalised 0.86, 0.83, 0.92). Then 0.1 adds 0.31 over it, 0.01 only 0.08.
    history = [
        _past("a", [(0.1, 0.9), (0.03, 0.8), (0.01, 0.2)]),
        _past("b", [(0.1, 0.7), (0.03, 0.6), (0.01, 0.1)]),
        _past("c", [(0.01, 0.95), (0.03, 0.9), (0.1, 0.3)]),
    ]
    points = zero_shot_points(history, 3)
    assert [point.settings["lr_high"] for point in points] == [0.03, 0.1, 0.01]
    assert points[0].distance is None  # blind to the evidence


def test_a_portfolio_pick_is_credited_to_the_sweep_where_it_ranked_best():
    history = [_past("a", [(0.1, 0.9), (0.03, 0.8)]), _past("b", [(0.03, 0.7), (0.1, 0.6)])]
    picks = {p.settings["lr_high"]: (p.sweep, p.rank) for p in zero_shot_points(history, 2)}
    assert picks == {0.1: ("a", 1), 0.03: ("b", 1)}


def test_zero_shot_of_the_same_model_reads_only_its_sweeps():
    history = [_past("a", [(0.1, 0.9)], model="lite0"), _past("b", [(0.01, 0.9)], model="rn")]
    assert [p.sweep for p in zero_shot_points(history, 5, model="rn")] == ["b"]
    assert first_points(get_algorithm("zero_shot_model"), None, history, 5, "lite0")[0].sweep == "a"


def test_a_model_without_past_sweeps_learns_from_its_family_and_the_log_names_the_model():
    history = [
        _past("lite0-a", [(0.1, 0.9), (0.03, 0.5)], model="tf_efficientnet_lite0"),
        _past("suite-b", [(0.01, 0.9)], model="test_resnet"),
    ]
    assert model_family("tf_efficientnet_lite3") == model_family("efficientnet_b0")
    assert model_family("tf_efficientnet_lite3") != model_family("resnet50.a1_in1k")
    assert model_family("no_such_model") == "no_such_model"
    points = zero_shot_points(history, 5, model="tf_efficientnet_lite3")
    assert [p.sweep for p in points] == ["lite0-a", "lite0-a"]  # never the ResNet sweep
    assert "tf_efficientnet_lite0" in points[0].reason
    # With a past sweep of the model itself, the family is not read.
    own = _past("lite3-c", [(0.3, 0.8)], model="tf_efficientnet_lite3")
    points = zero_shot_points([*history, own], 5, model="tf_efficientnet_lite3")
    assert [(p.sweep, p.other_model) for p in points] == [("lite3-c", "")]
    # A model of no known family has no warm start.
    assert zero_shot_points(history, 5, model="no_such_model") == []


def test_the_bounding_box_spans_the_past_winners_inside_the_space():
    space = parse_space(
        {
            "name": "s",
            "parameters": {
                "lr_high": {"type": "float", "low": 0.001, "high": 0.3, "log": True},
                "reinit_layers": {"type": "int", "low": 1, "high": 5},
                "l2sp_layers": {"type": "choice", "values": [0, 2, "all"]},
            },
        }
    )
    winners = [
        {"lr_high": 0.01, "reinit_layers": 2, "l2sp_layers": 0},
        {"lr_high": 0.5, "reinit_layers": 3, "l2sp_layers": "all"},
    ]
    history = [
        PastSweep(f"p{i}", EvidenceVector(0.5, 1.0), ((w, 0.9),)) for i, w in enumerate(winners)
    ]
    box = bounding_box(space, history).parameters
    assert isinstance(box["lr_high"], FloatRange)
    assert (box["lr_high"].low, box["lr_high"].high, box["lr_high"].log) == (0.01, 0.3, True)
    assert isinstance(box["reinit_layers"], IntRange)
    assert (box["reinit_layers"].low, box["reinit_layers"].high) == (2, 3)
    assert isinstance(box["l2sp_layers"], Choice) and box["l2sp_layers"].values == [0, "all"]
    assert bounding_box(space, []) == space


def test_the_registry_is_what_the_sweep_file_accepts():
    (names,) = (typing.get_args(SearchConfig.model_fields["algorithm"].annotation),)
    assert list(names) == list(ALGORITHMS)
    with pytest.raises(KeyError, match="known: zero_shot_model, nbft, tpe"):
        get_algorithm("bayes")
    learners = {name for name, a in ALGORITHMS.items() if a.learns_from_history}
    assert learners == {"nbft", "zero_shot", "zero_shot_model", "bounding_box"}
    assert [name for name, a in ALGORITHMS.items() if a.waits_for_evidence] == ["nbft"]
