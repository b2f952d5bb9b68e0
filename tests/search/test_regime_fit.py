"""The regime rule refit from past sweeps: the winner's learning rate is the ground truth."""

from __future__ import annotations

import pytest

from nonbinary_ft.search.regime_fit import refit_rule, winner_regime
from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep

RATES = (0.001, 0.01, 0.1)


def _past(name: str, fisher: float, winner_lr: float, regime: str, gap: float) -> PastSweep:
    ranked = [({"lr_high": winner_lr}, 0.9)] + [
        ({"lr_high": lr}, 0.5) for lr in RATES if lr != winner_lr
    ]
    return PastSweep(name, EvidenceVector(0.5, fisher), tuple(ranked), regime=regime, gap=gap)


def test_the_winner_below_the_median_rate_speaks_for_fits_well():
    assert winner_regime(_past("a", 1.0, 0.001, "fits_well", -0.1)) == "fits_well"
    assert winner_regime(_past("b", 1.0, 0.1, "fits_well", -0.1)) == "fits_poorly"
    assert winner_regime(_past("c", 1.0, 0.01, "fits_well", -0.1)) is None  # at the median


def test_a_separating_score_is_found_and_compared_with_the_paper():
    history = [
        _past("w1", 30.0, 0.001, "fits_well", -0.3),
        _past("w2", 20.0, 0.001, "fits_poorly", 0.2),  # the paper's gap got this one wrong
        _past("w3", 50.0, 0.001, "fits_well", -0.5),
        _past("p1", 2.0, 0.1, "fits_poorly", 0.4),
        _past("p2", 5.0, 0.1, "fits_well", -0.2),  # and this one
        _past("p3", 0.5, 0.1, "fits_poorly", 0.6),
    ]
    comparison = refit_rule(history)
    assert comparison.sweeps == 6 and comparison.paper_accuracy == pytest.approx(4 / 6)
    fit = comparison.refit
    assert fit is not None and fit.feature == "fisher" and fit.well_above
    assert 5.0 < fit.threshold < 20.0  # a midpoint in log scale
    assert fit.train_accuracy == 1.0 and fit.cv_accuracy == 1.0
    assert fit.text.startswith("fisher > ")


def test_too_few_or_one_sided_sweeps_give_no_refit():
    history = [_past(f"w{i}", 10.0 + i, 0.001, "fits_well", -0.3) for i in range(4)]
    comparison = refit_rule(history)
    assert comparison.refit is None and comparison.paper_accuracy == 1.0
