"""Sampling under the layer constraints: every config valid for the model before it starts."""

from __future__ import annotations

import json

import optuna
import pytest

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.config.space import parse_space
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.search.grid import grid_points
from nonbinary_ft.search.sampling import (
    ConstrainedSpace,
    SpaceSource,
    constrain_space,
    make_valid,
)

L = 6  # test_resnet's layer count
BASE = TrialSettings()

TOO_WIDE = {
    "name": "too_wide",
    "parameters": {
        "reinit_layers": {"type": "int", "low": 1, "high": 10},
        "low_layers": {"type": "int", "low": 0, "high": 10},
        "lr_low": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "l2sp_layers": {"type": "choice", "values": [0, 3, 5, "all"]},
        "lr_high": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    },
}


def _source(raw: dict) -> SpaceSource:
    return SpaceSource(parse_space(raw, "sweep.yaml", "sweep.space"), "sweep.yaml", "sweep.space")


def _constrain(raw: dict, base: TrialSettings = BASE):
    return constrain_space(_source(raw), L, base, "test_resnet")


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)]
)
def test_every_sampled_config_is_valid_for_the_model(sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = ConstrainedSpace(_constrain(TOO_WIDE), L, BASE)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen_k = set()
    for _ in range(150):
        trial = study.ask()
        config = space(trial)
        settings = TrialSettings.model_validate(config)
        settings.fit_to(L)  # k <= 5, n and m <= 6 - k
        seen_k.add(settings.reinit_layers)
        study.tell(trial, settings.lr_high)
    assert seen_k == {1, 2, 3, 4, 5}  # capped at L - 1, not collapsed onto one value


FINITE = {
    "name": "finite",
    "parameters": {
        "reinit_layers": {"type": "int", "low": 1, "high": 10},
        "low_layers": {"type": "int", "low": 0, "high": 10},
        "lr_low": {"type": "fixed", "value": 0.001},
        "l2sp_layers": {"type": "choice", "values": [0, 3, 5, "all"]},
        "lr_high": {"type": "choice", "values": [0.1, 0.01]},
    },
}


def test_combinations_are_every_config_a_sampler_can_make():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = ConstrainedSpace(_constrain(FINITE), L, BASE)
    combinations = space.combinations()
    assert combinations is not None
    enumerated = {json.dumps(each["settings"], sort_keys=True) for each in combinations}
    # Each raw combination is what a sampler proposes: enqueued, Optuna gives that config.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for each in combinations[::7]:
        study.enqueue_trial(each["raw"])
        assert space(study.ask()) == each["settings"]
    sampled = {
        json.dumps(space(study.ask()), sort_keys=True) for _ in range(3000)
    }  # k in 1..5, n in 0..6-k, m clamped to 6-k, two learning rates
    assert sampled == enumerated
    assert len(enumerated) < len(combinations)  # 'all' and a clamped m can make one config


def test_a_float_range_or_a_huge_space_is_not_enumerated():
    assert ConstrainedSpace(_constrain(TOO_WIDE), L, BASE).combinations() is None
    assert ConstrainedSpace(_constrain(FINITE), L, BASE).combinations(limit=20) is None


def test_capped_space_shows_the_model_bounds():
    capped = _constrain(TOO_WIDE)
    assert capped.parameters["reinit_layers"].high == 5  # L - 1
    assert capped.parameters["low_layers"].high == 5  # L - (smallest k)
    assert capped.parameters["l2sp_layers"].values == [0, 3, 5, "all"]


@pytest.mark.parametrize(
    ("parameters", "field", "expected"),
    [
        ({"reinit_layers": {"type": "int", "low": 7, "high": 9}}, "reinit_layers", "at most 5"),
        ({"reinit_layers": {"type": "grid", "values": [6, 8]}}, "reinit_layers", "at most 5"),
        (
            {
                "reinit_layers": {"type": "fixed", "value": 3},
                "l2sp_layers": {"type": "fixed", "value": 4},
            },
            "reinit_layers",
            "at most 2",
        ),
        ({"reinit_layers": {"type": "float", "low": 1, "high": 3}}, "reinit_layers", "int range"),
        ({"lr_high": {"type": "grid", "values": [0.01, -1]}}, "lr_high", "greater than 0"),
        ({"low_layers": {"type": "int", "low": 0, "high": 3}}, "lr_low", "because low_layers"),
        (
            {
                "reinit_layers": {"type": "int", "low": 1, "high": 3},
                "low_layers": {"type": "int", "low": 50, "high": 60},
                "lr_low": {"type": "fixed", "value": 0.001},
            },
            "low_layers",
            "at most 5",
        ),
    ],
)
def test_impossible_or_invalid_ranges_name_the_parameter(parameters, field, expected):
    with pytest.raises(ConfigError) as caught:
        _constrain({"name": "bad", "parameters": parameters})
    assert caught.value.field == f"sweep.space.parameters.{field}"
    assert expected in caught.value.expected
    assert caught.value.source == "sweep.yaml"


def test_grid_drops_combinations_that_break_a_constraint_and_repeats():
    figure = {
        "name": "fig",
        "parameters": {
            "reinit_layers": {"type": "grid", "values": [1, 5]},
            "low_layers": {"type": "grid", "values": [0, 3]},
            "lr_low": {"type": "fixed", "value": 0.001},
        },
    }
    again = {"name": "again", "parameters": {"reinit_layers": {"type": "grid", "values": [1]}}}
    spaces = [(_source(raw), _constrain(raw)) for raw in (figure, again)]
    points, dropped = grid_points(spaces, L, BASE)
    pairs = [(p["reinit_layers"], p["low_layers"]) for p in points]
    assert pairs == [(1, 0), (1, 3), (5, 0), (1, 0)]  # (5, 3): n > L - k, dropped
    # the second space's only point differs from (1, 0) of the first by lr_low: kept
    assert points[3]["lr_low"] is None and dropped == 1


def test_grid_with_a_range_is_rejected():
    raw = {"name": "mixed", "parameters": {"lr_high": {"type": "float", "low": 0.001, "high": 0.1}}}
    with pytest.raises(ConfigError, match="'grid' or 'fixed'"):
        grid_points([(_source(raw), _constrain(raw))], L, BASE)


def test_make_valid_clamps_layer_counts_into_the_model():
    valid = make_valid(
        {"reinit_layers": 9, "low_layers": 9, "lr_low": 0.001, "l2sp_layers": 9}, L, BASE
    )
    assert (valid["reinit_layers"], valid["low_layers"], valid["l2sp_layers"]) == (5, 1, 1)
    assert make_valid({"l2sp_layers": "all"}, L, BASE)["l2sp_layers"] == "all"
