"""Table 7 as concrete settings per regime, and narrowed spaces that contain them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from nonbinary_ft.analysis import (
    narrowed_space,
    recommend,
    recommended_settings,
    rows_against,
    space_violations,
)
from nonbinary_ft.analysis.outputs import space_yaml
from nonbinary_ft.config import ExperimentConfig, TrialSettings
from nonbinary_ft.config.space import Choice, Fixed, FloatRange, IntRange, load_space, parse_space
from nonbinary_ft.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REGIMES = ("fits_well", "fits_poorly", "unclear")


def config(lr_high: float = 0.025, beta: float = 1e-4) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "t",
            "model": {"name": "test_resnet", "pretrained": "none"},
            "data": {"kind": "digits"},
            "settings": {"lr_high": lr_high, "beta": beta, "alpha": 0.05},
        }
    )


def test_fits_well_inception_sized():
    rec = recommend("fits_well", config(0.025), num_layers=21)
    s = rec.settings
    assert s.lr_high == pytest.approx(0.0025)  # a tenth of the base, as Caltech vs Cars
    assert s.reinit_layers == 2 and s.low_layers == 0 and s.lr_low is None
    assert s.l2sp_layers == "all" and s.alpha == 0.01 and s.beta == 0.01
    assert set(rec.reasons) >= {"lr_high", "reinit_layers", "low_layers", "l2sp_layers"}
    assert "table 2" in rec.reasons["lr_high"]


def test_fits_poorly_inception_sized():
    s = recommend("fits_poorly", config(0.025, beta=3e-4), num_layers=21).settings
    assert s.lr_high == 0.025 and s.reinit_layers == 1
    assert s.low_layers == 9  # 45 % of 20 transferred layers: the paper's 8-10
    assert s.lr_low == pytest.approx(0.01)  # 0.4 x 0.025, the paper's Cars setting
    assert s.l2sp_layers == 0 and s.beta == 3e-4


def test_unclear_is_the_binary_default_at_the_base_lr():
    s = recommend("unclear", config(0.02), num_layers=21).settings
    assert s == TrialSettings(lr_high=0.02, alpha=0.05, beta=1e-4)


@pytest.mark.parametrize(
    ("num_layers", "well_k", "poor_n"),
    [(2, 1, 0), (3, 2, 1), (6, 2, 2), (7, 2, 3)],
)
def test_layer_counts_respect_the_model(num_layers, well_k, poor_n):
    well = recommend("fits_well", config(), num_layers).settings
    poor = recommend("fits_poorly", config(), num_layers).settings
    assert well.reinit_layers == well_k
    assert poor.low_layers == poor_n
    assert (poor.lr_low is None) == (poor_n == 0)
    for settings in (well, poor):
        settings.fit_to(num_layers)


def test_a_one_layer_model_cannot_be_recommended_for():
    with pytest.raises(ConfigError, match="at least 2 layers"):
        recommend("fits_well", config(), num_layers=1)


def _corners(distribution):
    if isinstance(distribution, Fixed):
        return [distribution.value]
    if isinstance(distribution, (FloatRange, IntRange)):
        return [distribution.low, distribution.high]
    return list(distribution.values)


@pytest.mark.parametrize("num_layers", [2, 3, 6, 21])
@pytest.mark.parametrize("regime", REGIMES)
def test_narrowed_space_validates_contains_the_recommendation_and_fits_the_model(
    regime, num_layers
):
    rec = recommend(regime, config(), num_layers)
    # Round trip through the search_spaces/ file format, comments included.
    parsed = parse_space(yaml.safe_load(space_yaml(rec)))
    assert parsed == rec.space
    assert space_violations(rec.space, rec.settings) == []
    assert set(rec.space_reasons) == set(rec.space.parameters)
    # Every corner of the space is a valid trial for this model (m, n <= L - k for every k).
    names = list(rec.space.parameters)
    for values in itertools.product(*(_corners(rec.space.parameters[n]) for n in names)):
        corner = dict(zip(names, values, strict=True))
        settings = TrialSettings(**{**rec.settings.model_dump(), **corner})
        settings.fit_to(num_layers)


def test_narrowed_spaces_differ_as_table_7_says():
    well, _ = narrowed_space("fits_well", recommend("fits_well", config(), 21).settings, 21)
    poor, _ = narrowed_space("fits_poorly", recommend("fits_poorly", config(), 21).settings, 21)
    assert well.parameters["lr_high"].high < poor.parameters["lr_high"].low  # low vs high LR
    assert well.parameters["reinit_layers"].low >= 2
    assert poor.parameters["reinit_layers"] == Fixed(value=1)
    assert well.parameters["low_layers"] == Fixed(value=0)
    assert isinstance(poor.parameters["low_layers"], IntRange)
    assert isinstance(well.parameters["l2sp_layers"], Choice)
    assert "all" in well.parameters["l2sp_layers"].values
    assert poor.parameters["l2sp_layers"] == Fixed(value=0)


def test_space_violations_finds_a_value_outside():
    rec = recommend("fits_poorly", config(), 21)
    outside = rec.settings.model_copy(update={"lr_high": 1.0, "l2sp_layers": 3})
    assert space_violations(rec.space, outside) == ["lr_high", "l2sp_layers"]


@pytest.mark.parametrize("regime", ["fits_well", "fits_poorly"])
def test_static_space_files_follow_the_same_rules(regime):
    """search_spaces/<regime>.yaml holds what recommend gives for Inception v4 at lr 0.025."""
    space = load_space(ROOT / "search_spaces" / f"{regime}.yaml")
    rec = recommend(regime, config(0.025), num_layers=21)
    assert space_violations(space, rec.settings) == []
    assert set(space.parameters) == set(rec.space.parameters)
    other = recommend(next(r for r in REGIMES[:2] if r != regime), config(0.025), 21)
    assert space_violations(space, other.settings)  # the other regime's settings are outside


def test_the_papers_optima_go_against_their_regime_on_one_row_at_most():
    base = TrialSettings(lr_high=0.025)
    well, _ = recommended_settings("fits_well", base, 21)
    poorly, _ = recommended_settings("fits_poorly", base, 21)
    # Table 6: Caltech (fits well) kept one new layer, L2-SP on all, no low layers.
    caltech = TrialSettings(lr_high=0.0025, reinit_layers=1, l2sp_layers="all")
    assert rows_against(well, caltech) == [
        "reinit_layers=1 (more layers re-initialised: no, the regime says yes)"
    ]
    # Aircraft (fits poorly) re-initialised three layers, 8 low layers at 0.01, no L2-SP.
    aircraft = TrialSettings(reinit_layers=3, lr_high=0.025, low_layers=8, lr_low=0.01)
    assert [row.split("=")[0] for row in rows_against(poorly, aircraft)] == ["reinit_layers"]
    # Each regime's recommendation goes against the other on every row.
    assert len(rows_against(well, poorly)) == len(rows_against(poorly, well)) == 3
    assert rows_against(well, well) == []
