"""Optuna's samplers as the sweep's searcher: an untried point when the sampler repeats itself."""

from __future__ import annotations

import optuna
import pytest

from nonbinary_ft.config import SweepConfig, TrialSettings
from nonbinary_ft.config.space import parse_space
from nonbinary_ft.tuning.sampler import optuna_searcher

PARAMETERS = {
    "lr_high": {"type": "choice", "values": [0.001, 0.01, 0.1, 1.0]},
    "reinit_layers": {"type": "int", "low": 1, "high": 4},
}


def _sampler(parameters: dict, seed: int = 0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = parse_space({"name": "small", "parameters": parameters})
    sweep = SweepConfig.model_validate({"search": {"algorithm": "tpe", "seed": seed}})
    sampler = optuna_searcher(sweep, space, 6, TrialSettings(), ())
    sampler.set_search_properties("val_accuracy", "max", {})
    return sampler


@pytest.mark.parametrize("seed", range(3))
def test_the_next_draw_is_the_untried_point_enqueued(seed):
    sampler = _sampler(PARAMETERS, seed)
    wanted = {(1.0, 4), (0.001, 3)}

    def is_new(settings: dict) -> bool:
        return (settings["lr_high"], settings["reinit_layers"]) in wanted

    chosen = []
    for index in range(2):
        assert sampler.enqueue_untried(is_new) is True
        config = sampler.suggest(f"t{index}")
        chosen.append((config["lr_high"], config["reinit_layers"]))
        sampler.on_trial_complete(f"t{index}", {"val_accuracy": 0.5})
    # Only points is_new accepts (the sampler alone would land on one of 16 points).
    assert set(chosen) <= wanted


def test_an_exhausted_or_infinite_space_has_no_untried_point():
    sampler = _sampler(PARAMETERS)
    assert sampler.enqueue_untried(lambda settings: False) is False
    ranged = {**PARAMETERS, "lr_high": {"type": "float", "low": 0.001, "high": 0.1}}
    assert _sampler(ranged).enqueue_untried(lambda settings: True) is None


def test_a_warm_started_sampler_takes_the_untried_point_through_its_wrapper():
    from nonbinary_ft.search.policy import DecisionLog
    from nonbinary_ft.tuning.searcher import WarmStartSearcher

    sampler = _sampler(PARAMETERS)
    warm = WarmStartSearcher(
        lambda first: sampler, lambda evidence: [], "unregistered://warm",
        DecisionLog(None, epochs=2), wait=False,
    )  # fmt: skip
    assert warm.enqueue_untried(lambda settings: True) is None  # no sampler yet
    warm.suggest("t0")
    warm.on_trial_complete("t0", {"val_accuracy": 0.5})
    assert warm.enqueue_untried(lambda s: (s["lr_high"], s["reinit_layers"]) == (1.0, 4)) is True
    config = warm.suggest("t1")
    assert (config["lr_high"], config["reinit_layers"]) == (1.0, 4)


def test_a_saved_sampler_restores_its_untried_draws(tmp_path):
    """Ray saves the innermost searcher at each experiment snapshot and restores it on
    --resume: the enqueued point and the seeded choice of the next ones survive."""
    sampler = _sampler(PARAMETERS)
    sampler.suggest("t0")
    sampler.on_trial_complete("t0", {"val_accuracy": 0.5})
    assert sampler.enqueue_untried(lambda settings: True) is True
    sampler.save(str(tmp_path / "searcher.pkl"))
    restored = _sampler(PARAMETERS, seed=1)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for index in range(1, 6):
        assert restored.suggest(f"t{index}") == sampler.suggest(f"t{index}")
        for each in (restored, sampler):
            each.on_trial_complete(f"t{index}", {"val_accuracy": 0.4})
            assert each.enqueue_untried(lambda settings: settings["lr_high"] < 1.0) is True
