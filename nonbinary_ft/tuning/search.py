"""Factories of the sweep's searcher and scheduler, each wrapped by its pruning hook.

The objective is the validation accuracy reported every epoch (``val_accuracy``, maximised).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nonbinary_ft.config import SweepConfig, TrialSettings
from nonbinary_ft.space import SearchSpace
from nonbinary_ft.tuning.pruning import PruningScheduler, PruningSearcher
from nonbinary_ft.tuning.sampling import ConstrainedSpace

__all__ = ["METRIC", "MODE", "GridSearcher", "create_searcher", "create_scheduler"]

METRIC = "val_accuracy"
MODE = "max"


class GridSearcher(Searcher):
    """Suggests a fixed list of configs in order, then declares the search finished.

    Ray's own grid (``tune.grid_search``) expands the product before any trial starts; this
    one takes the already filtered points (valid for the model, without duplicates), and is
    a :class:`Searcher`, so that the pruning wrapper and ``--resume`` treat it like the others.

    Args:
        points: the configs to suggest.
        metric: the metric to optimise (kept for Ray's bookkeeping).
        mode: 'max' or 'min'.
    """

    def __init__(
        self, points: Sequence[dict[str, Any]], metric: str = METRIC, mode: str = MODE
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.points = [dict(point) for point in points]
        self._next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        """The next point, or ``Searcher.FINISHED`` after the last."""
        if self._next >= len(self.points):
            return Searcher.FINISHED
        point = dict(self.points[self._next])
        self._next += 1
        return point

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Nothing to learn: a grid does not adapt."""

    def save(self, checkpoint_path: str) -> None:
        """Save the position in the grid (Ray calls this for --resume)."""
        with open(checkpoint_path, "wb") as out:
            pickle.dump({"points": self.points, "next": self._next}, out)

    def restore(self, checkpoint_path: str) -> None:
        """Restore what :meth:`save` wrote."""
        with open(checkpoint_path, "rb") as source:
            state = pickle.load(source)
        self.points, self._next = state["points"], state["next"]


def create_searcher(
    sweep: SweepConfig,
    sweep_key: str,
    *,
    space: SearchSpace | None = None,
    grid: Sequence[dict[str, Any]] | None = None,
    num_layers: int,
    base: TrialSettings,
) -> PruningSearcher:
    """Build the search algorithm of ``sweep.search`` over the model-capped space.

    Args:
        sweep: the sweep section.
        sweep_key: key of the sweep's live pruning policy.
        space: the capped space (algorithms 'tpe' and 'random').
        grid: the valid grid points (algorithm 'grid').
        num_layers: the model's layer count L.
        base: the settings the space leaves out.

    Raises:
        ValueError: the space or grid that the algorithm needs is missing.
    """
    algorithm = sweep.search.algorithm
    inner: Searcher
    if algorithm == "grid":
        if grid is None:
            raise ValueError("search 'grid' needs the grid points")
        inner = GridSearcher(grid)
    else:
        if space is None:
            raise ValueError(f"search '{algorithm}' needs a space")
        # Imported here: Optuna is only needed by these two algorithms.
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler: optuna.samplers.BaseSampler
        if algorithm == "tpe":
            sampler = optuna.samplers.TPESampler(
                seed=sweep.search.seed,
                n_startup_trials=sweep.search.n_startup_trials,
                # n and m have ranges that depend on k: TPE falls back to independent
                # sampling for them, which is expected, not worth a warning per trial.
                warn_independent_sampling=False,
            )
        else:
            sampler = optuna.samplers.RandomSampler(seed=sweep.search.seed)
        inner = OptunaSearch(
            space=ConstrainedSpace(space, num_layers, base),
            metric=METRIC,
            mode=MODE,
            sampler=sampler,
        )
    return PruningSearcher(inner, sweep_key)


def create_scheduler(sweep: SweepConfig, epochs: int, sweep_key: str) -> PruningScheduler:
    """Build the scheduler of ``sweep.scheduler`` (ASHA over epochs, or none).

    Args:
        sweep: the sweep section.
        epochs: training epochs per trial (ASHA's ``max_t``).
        sweep_key: key of the sweep's live pruning policy.
    """
    inner: TrialScheduler
    if sweep.scheduler.kind == "asha":
        inner = ASHAScheduler(
            time_attr="epoch",  # the trial's own epoch count, carried by its checkpoint
            metric=METRIC,
            mode=MODE,
            max_t=epochs,
            grace_period=sweep.scheduler.grace_period,
            reduction_factor=sweep.scheduler.reduction_factor,
        )
    else:
        inner = FIFOScheduler()
    return PruningScheduler(
        inner, sweep_key, protect_top_fraction=sweep.protect_top_fraction
    )
