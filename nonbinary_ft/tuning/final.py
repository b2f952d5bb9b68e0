"""Stage 3's arithmetic: which settings to re-run, and what their seeds add up to.

The top N distinct settings of the search (by validation accuracy) are re-run with every seed
of ``sweep.final.seeds`` on the test split, and so is the sweep file's own ``settings:`` (for
the quickstart: head-only re-init, one LR, plain L2, the binary default), so that the gain over
it is measured in the same sweep. Each setting's seeds give a mean, a sample standard deviation
and the accuracy of their ensemble (the softmax averaged over the seeds' models). Nothing here
needs Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.config.settings import same_settings
from nonbinary_ft.results.io import mean_std
from nonbinary_ft.results.schema import (
    BEST_LABEL,
    BINARY_DEFAULT_LABEL,
    FinalEntry,
    TrialResult,
)
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "SEED_KEY",
    "RANK_KEY",
    "ranked",
    "binary_default_point",
    "final_points",
    "ensemble_accuracy",
    "final_entries",
]

# The keys a final run's config carries besides its settings.
SEED_KEY = "train_seed"
RANK_KEY = "final_rank"

Probabilities = tuple[np.ndarray, np.ndarray]
"""A model's (N, C) softmax on the test split, and the N labels."""


def ranked(trials: Sequence[TrialResult]) -> list[TrialResult]:
    """Completed trials, best last-epoch validation accuracy first."""
    completed = [
        t for t in trials if t.status == TrialStatus.COMPLETED and t.val_accuracy is not None
    ]
    # Ties broken by trial id, so that a resumed sweep picks the same top settings.
    return sorted(completed, key=lambda t: (-(t.val_accuracy or 0.0), t.trial_id))


def binary_default_point(config: ExperimentConfig) -> dict[str, Any]:
    """The sweep file's own ``settings:`` as a trial config (None values left out)."""
    return {k: v for k, v in config.settings.model_dump().items() if v is not None}


def final_points(
    trials: Sequence[TrialResult],
    top_n: int,
    seeds: Sequence[int],
    default: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The top N distinct settings x seeds, and ``default`` (rank 0) unless it is among them.

    Returns:
        One trial config per run: the settings with :data:`SEED_KEY` and :data:`RANK_KEY`.
    """
    chosen: list[TrialResult] = []
    for trial in ranked(trials):
        if len(chosen) == top_n:
            break
        if all(trial.settings != other.settings for other in chosen):
            chosen.append(trial)
    ranks = list(enumerate((trial.settings for trial in chosen), start=1))
    # The binary default is measured in the same sweep, so that the gain over it is real.
    if chosen and default is not None and not any(same_settings(default, s) for _, s in ranks):
        ranks.append((0, dict(default)))
    return [
        {**settings, SEED_KEY: seed, RANK_KEY: rank} for rank, settings in ranks for seed in seeds
    ]


def ensemble_accuracy(probabilities: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """Accuracy of the seed ensemble: the argmax of the mean softmax over the models.

    Args:
        probabilities: one (N, C) softmax array per model, rows in the same test order.
        labels: the N true labels.

    Raises:
        ValueError: no arrays, or arrays whose shapes disagree with each other or the labels.
    """
    if not probabilities:
        raise ValueError("ensemble_accuracy needs at least one model's probabilities")
    stacked = np.stack(probabilities)  # raises on shape mismatch
    if stacked.shape[1] != len(labels):
        raise ValueError(f"{stacked.shape[1]} predictions for {len(labels)} labels")
    return float((stacked.mean(axis=0).argmax(axis=1) == labels).mean())


def _labels(rank: int, settings: Mapping[str, Any], default: Mapping[str, Any]) -> list[str]:
    """Rank 0 is the binary default's own rank; a top rank with the same settings gets both."""
    if rank == 0:
        return [BINARY_DEFAULT_LABEL]
    labels = [BEST_LABEL if rank == 1 else f"rank {rank}"]
    if same_settings(settings, default):
        labels.append(BINARY_DEFAULT_LABEL)
    return labels


def _seed_outcome(trial: TrialResult | None) -> tuple[float | None, str | None]:
    """A seed's test accuracy, or None and why (a failed or unfinished seed)."""
    if trial is None:
        return None, "no result"
    if trial.test_accuracy is not None:
        return trial.test_accuracy, None
    return None, str(trial.status) + (f": {trial.prune_reason}" if trial.prune_reason else "")


def _ensemble(
    group: Sequence[TrialResult], probabilities: Mapping[str, Probabilities | None]
) -> float | None:
    loaded = [probabilities.get(t.trial_id) for t in group]
    usable = [item for item in loaded if item is not None]
    if not usable or len(usable) != len(group):
        return None
    return ensemble_accuracy([probs for probs, _ in usable], usable[0][1])


def final_entries(
    final_trials: Sequence[TrialResult],
    search_trials: Sequence[TrialResult],
    probabilities: Mapping[str, Probabilities | None],
    default: Mapping[str, Any],
    seeds: Sequence[int],
) -> list[FinalEntry]:
    """Stage 3's entries: one per label (a top setting that is also the default, twice).

    Args:
        final_trials: the seeded runs (``rank`` and ``seed`` set).
        search_trials: the search, for each setting's best validation accuracy there.
        probabilities: trial id -> its test softmax and labels (None: not saved).
        default: the sweep file's own settings.
        seeds: the seeds every setting was run with.
    """
    entries = []
    for rank in sorted({t.rank for t in final_trials if t.rank is not None}, key=_rank_order):
        group = sorted((t for t in final_trials if t.rank == rank), key=lambda t: t.seed or 0)
        by_seed = {t.seed: t for t in group}
        outcomes = [_seed_outcome(by_seed.get(seed)) for seed in seeds]
        mean, std = mean_std([accuracy for accuracy, _ in outcomes if accuracy is not None])
        ensemble = _ensemble(group, probabilities)
        settings = dict(group[0].settings)
        matches = [
            t.val_accuracy or 0.0
            for t in search_trials
            if t.settings == settings and t.status == TrialStatus.COMPLETED
        ]
        for label in _labels(rank, settings, default):
            entries.append(
                FinalEntry(
                    settings=settings,
                    label=label,
                    seeds=tuple(seeds),
                    test_accuracies=tuple(accuracy for accuracy, _ in outcomes),
                    errors=tuple(error for _, error in outcomes),
                    mean=mean,
                    std=std,
                    ensemble_accuracy=ensemble,
                    ensemble_reason=None
                    if ensemble is not None
                    else "not every seed's test predictions were available",
                    rank=rank,
                    search_val_accuracy=max(matches) if matches else None,
                )
            )
    return entries


def _rank_order(rank: int) -> tuple[bool, int]:
    # The top settings in order, the binary default's own rank (0) last.
    return rank == 0, rank
