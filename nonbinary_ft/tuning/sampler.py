"""Optuna's samplers (TPE, random) as the sweep's Ray Tune searcher, over the capped space.

Ray's :class:`~ray.tune.search.optuna.OptunaSearch` runs the space as a define-by-run
function (:class:`~nonbinary_ft.search.sampling.ConstrainedSpace`: k first, then n and m within
L - k). :class:`SpaceSampler` adds one thing: on a finite space, a sampler that proposes a
point already tried (TPE does, once the points it believes best are taken) can be given an
untried point at random for its next draw instead. The pruning wrapper asks for it; without
it, a nearly exhausted grid costs TPE several draws per trial, each dearer than the last.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.config.space import SearchSpace
from nonbinary_ft.config.sweep import SweepConfig
from nonbinary_ft.search.algorithms import get_algorithm
from nonbinary_ft.search.sampling import ConstrainedSpace

__all__ = ["METRIC", "MODE", "SpaceSampler", "optuna_searcher"]

METRIC = "val_accuracy"
MODE = "max"


class SpaceSampler(OptunaSearch):
    """Ray's Optuna searcher over a :class:`ConstrainedSpace` that can enqueue an untried point.

    Args:
        space: the define-by-run space.
        seed: seeds the choice of untried points.
        **kwargs: :class:`OptunaSearch`'s (metric, mode, sampler, points_to_evaluate).
    """

    def __init__(self, space: ConstrainedSpace, seed: int | None, **kwargs: Any) -> None:
        super().__init__(space=space, **kwargs)
        self._constrained = space
        self._rng = random.Random(seed)

    def enqueue_untried(self, is_new: Callable[[dict[str, Any]], bool]) -> bool | None:
        """Make the next draw a point of the space, at random, whose settings ``is_new``.

        Returns:
            True when one is enqueued; False when every point has been tried (the space is
            exhausted); None when the space is not finite (or too large to enumerate).
        """
        combinations = _combinations(self._constrained)
        if combinations is None:
            return None
        for index in self._rng.sample(range(len(combinations)), len(combinations)):
            if is_new(combinations[index]["settings"]):
                # Ray's own points_to_evaluate go into the study this way.
                self._ot_study.enqueue_trial(combinations[index]["raw"])
                return True
        return False


def _combinations(space: ConstrainedSpace) -> tuple[dict[str, Any], ...] | None:
    """:meth:`ConstrainedSpace.combinations`, enumerated once per space, model and base
    settings (a replay builds thousands of searchers over one space, and an enumeration
    validates every combination: 30 ms for 150 points)."""
    return _enumerated(
        space.space.model_dump_json(), space.num_layers, space.base.model_dump_json()
    )


@functools.lru_cache(maxsize=16)
def _enumerated(space: str, num_layers: int, base: str) -> tuple[dict[str, Any], ...] | None:
    constrained = ConstrainedSpace(
        SearchSpace.model_validate_json(space), num_layers, TrialSettings.model_validate_json(base)
    )
    combinations = constrained.combinations()
    return None if combinations is None else tuple(combinations)


def optuna_searcher(
    sweep: SweepConfig,
    space: SearchSpace,
    num_layers: int,
    base: TrialSettings,
    first: Sequence[dict[str, Any]],
) -> SpaceSampler:
    """Optuna's sampler of the algorithm (TPE or random) over the capped space, ``first``
    enqueued."""
    sampler: optuna.samplers.BaseSampler
    if get_algorithm(sweep.search.algorithm).sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=sweep.search.seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=sweep.search.seed, n_startup_trials=sweep.search.n_startup_trials
        )
    return SpaceSampler(
        ConstrainedSpace(space, num_layers, base),
        sweep.search.seed,
        metric=METRIC,
        mode=MODE,
        sampler=sampler,
        points_to_evaluate=[dict(point) for point in first] or None,
    )
