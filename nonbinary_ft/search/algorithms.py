"""The search algorithms a sweep can run, by name: what each needs and how it starts.

One registry (:data:`ALGORITHMS`) answers what the rest of the code would otherwise ask by
comparing names: which sampler runs, whether past sweeps are read and how they choose the
first trials, whether the first trials wait for stage 1's cheap evidence, and which early
stopping goes with it when ``scheduler.kind`` is 'auto'. The sweep file's
``search.algorithm`` names one of them (:func:`get_algorithm`); Ray Tune's searcher is built
from the entry (:func:`nonbinary_ft.tuning.searcher.create_searcher`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.config.space import SearchSpace
from nonbinary_ft.config.sweep import SweepConfig
from nonbinary_ft.search.transfer import zero_shot_points
from nonbinary_ft.search.warm_start import (
    EvidenceVector,
    FirstTrial,
    PastSweep,
    WarmPoint,
    first_trials,
    warm_start_points,
)

__all__ = [
    "Algorithm",
    "ALGORITHMS",
    "get_algorithm",
    "list_algorithms",
    "scheduler_kind",
    "analysis_with_search",
    "first_points",
    "warm_start_trials",
    "FITTED_CANDIDATES",
]

FITTED_CANDIDATES = 4
"""Past settings drawn per warm start wanted. Fitted into a space of continuous ranges, past
settings of a grid merge: the quickstart's 12 portfolio picks of the Lite0 tables gave 6
distinct trainings in the space paper_full. So four times as many are fitted, and the first
``count`` distinct ones run."""


@dataclass(frozen=True)
class Algorithm:
    """One search algorithm.

    Attributes:
        name: its name in ``search.algorithm``.
        summary: one line for help texts.
        sampler: what draws the settings: Optuna's TPE or random sampler, or the grid.
        first_trials: how past sweeps choose the first trials: 'nearest' (the sweeps nearest
            in the target's cheap evidence, which it waits for), 'zero_shot' (a portfolio of
            the whole history, blind to the evidence), 'zero_shot_model' (the same over past
            sweeps of the same model); None: no warm start.
        bounded: the space is shrunk to the box around the past sweeps' winners.
        scheduler: the early stopping that goes with it ('rush' or 'asha').
    """

    name: str
    summary: str
    sampler: Literal["tpe", "random", "grid"]
    first_trials: Literal["nearest", "zero_shot", "zero_shot_model"] | None = None
    bounded: bool = False
    scheduler: Literal["rush", "asha"] = "asha"

    @property
    def learns_from_history(self) -> bool:
        """Whether it reads past sweeps."""
        return self.first_trials is not None or self.bounded

    @property
    def waits_for_evidence(self) -> bool:
        """Whether its first trials wait for stage 1's cheap evidence."""
        return self.first_trials == "nearest"


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm(
            "zero_shot_model",
            "the best settings of past sweeps of the same model first (a greedy portfolio, "
            "blind to the target's evidence), then TPE: the default",
            "tpe", first_trials="zero_shot_model", scheduler="rush",
        ),
        Algorithm(
            "nbft",
            "the past sweeps nearest in the target's cheap evidence lend their winners as "
            "the first trials, then TPE",
            "tpe", first_trials="nearest", scheduler="rush",
        ),
        Algorithm("tpe", "Optuna's TPE", "tpe"),
        Algorithm("random", "Optuna's random sampler", "random"),
        Algorithm("grid", "every point of the space's grids, as in the paper", "grid"),
        Algorithm(
            "zero_shot",
            "zero_shot_model over the past sweeps of every model",
            "tpe", first_trials="zero_shot", scheduler="rush",
        ),
        Algorithm(
            "bounding_box",
            "random search in the box around the past sweeps' winners",
            "random", bounded=True, scheduler="rush",
        ),
    )  # fmt: skip
}


def list_algorithms() -> list[str]:
    """The names ``search.algorithm`` accepts."""
    return list(ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(ALGORITHMS)
        raise KeyError(f"unknown search algorithm {name!r}; known: {known}") from None


def scheduler_kind(sweep: SweepConfig) -> str:
    """The scheduler that runs: ``scheduler.kind``, 'auto' being the algorithm's own."""
    if sweep.scheduler.kind == "auto":
        return get_algorithm(sweep.search.algorithm).scheduler
    return sweep.scheduler.kind


def analysis_with_search(algorithm: str, when: str = "auto", veto: bool = False) -> bool:
    """Whether stage 1 runs beside the search from its start (else after the search).

    'auto' runs it with the search only when the search acts on its evidence: an algorithm
    whose first trials wait for it, or the regime veto. Otherwise the evidence is for the
    report alone, and running it first would hold one trial's share from the first trials:
    on the replay's Lite1 tables, 1.2 to 1.7 trials' worth of compute before the default
    search's portfolio could finish its first wave.

    Args:
        algorithm: ``search.algorithm``.
        when: ``analysis.when``.
        veto: ``analysis.veto``.
    """
    if when != "auto":
        return when == "with_search"
    return get_algorithm(algorithm).waits_for_evidence or veto


def first_points(
    algorithm: Algorithm,
    evidence: EvidenceVector | None,
    history: Sequence[PastSweep],
    count: int,
    model: str = "",
) -> list[WarmPoint]:
    """The past settings ``algorithm`` tries first (none for an algorithm without a warm
    start), still to be fitted to the sweep's space and model."""
    if algorithm.first_trials == "nearest":
        return warm_start_points(evidence, history, count)
    if algorithm.first_trials == "zero_shot":
        return zero_shot_points(history, count)
    if algorithm.first_trials == "zero_shot_model":
        return zero_shot_points(history, count, model)
    return []


def warm_start_trials(
    algorithm: Algorithm,
    evidence: EvidenceVector | None,
    history: Sequence[PastSweep],
    count: int,
    model: str,
    space: SearchSpace,
    num_layers: int,
    base: TrialSettings,
) -> list[FirstTrial]:
    """The first ``count`` distinct trials ``algorithm``'s warm start runs: its past settings
    (:func:`first_points`) fitted to ``space`` and the model."""
    points = first_points(algorithm, evidence, history, FITTED_CANDIDATES * count, model)
    return first_trials(points, space, num_layers, base)[:count]
