"""Stage 3's arithmetic: which settings to re-run, and what their seeds add up to.

The top N distinct settings of the search (by validation accuracy) are re-run with every seed
of ``sweep.final.seeds`` on the test split, and so is the binary baseline, so that the gain
over it is measured in the same sweep. The baseline is the best *binary* setting (head-only
re-initialisation, one learning rate, plain L2: what fine-tuning does by default, the paper's
table 2): the best such point of the search, or, when the search tried none, the sweep file's
own settings made binary at :data:`BASELINE_LR_FACTORS` times its learning rate, of which the
one with the best validation accuracy in stage 3 counts (a short learning-rate search of its
own: an untuned default would flatter the winner). Each setting's seeds give a mean, a sample
standard deviation and the accuracy of their ensemble (the softmax averaged over the seeds'
models). Nothing here needs Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.config.settings import is_binary, same_settings
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
    "BASELINE_LR_FACTORS",
    "Baseline",
    "binary_baseline",
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


BASELINE_LR_FACTORS = (0.1, 1.0, 10.0)
"""The baseline's own learning rates, as factors of the sweep file's ``lr_high``."""


@dataclass(frozen=True)
class Baseline:
    """The binary baseline's candidate settings (one, or one per learning rate) and how it
    was chosen, in words for the report."""

    candidates: tuple[dict[str, Any], ...]
    basis: str


def _point(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v is not None}


def binary_baseline(trials: Sequence[TrialResult], config: ExperimentConfig) -> Baseline:
    """The best binary setting of the search, else a short learning-rate search of its own."""
    binary = [trial for trial in ranked(trials) if is_binary(trial.settings)]
    if binary:
        best = binary[0]
        return Baseline(
            (_point(best.settings),),
            f"the best binary setting of the search (head only, lr_high "
            f"{best.settings['lr_high']:g}, plain L2; validation {best.val_accuracy:.3f})",
        )
    base = {
        **_point(config.settings.model_dump()),
        "reinit_layers": 1,
        "low_layers": 0,
        "l2sp_layers": 0,
    }
    base.pop("lr_new", None)
    base.pop("lr_low", None)
    rates = [base["lr_high"] * factor for factor in BASELINE_LR_FACTORS]
    return Baseline(
        tuple({**base, "lr_high": rate} for rate in rates),
        "head only, plain L2, the best of lr_high "
        + ", ".join(f"{rate:g}" for rate in rates)
        + " by validation accuracy in stage 3 (the search tried no binary setting)",
    )


def final_points(
    trials: Sequence[TrialResult],
    top_n: int,
    seeds: Sequence[int],
    baseline: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The top N distinct settings x seeds, and the baseline's candidates (ranks 0, -1, ...)
    unless one of them is among the top settings.

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
    # The baseline is measured in the same sweep, so that the gain over it is real.
    top = [settings for _, settings in ranks]
    if chosen and not any(same_settings(c, s) for c in baseline for s in top):
        ranks += [(-index, dict(c)) for index, c in enumerate(baseline)]
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


def _labels(rank: int, settings: Mapping[str, Any], baseline: Baseline) -> list[str]:
    """A baseline candidate's rank (<= 0) is the baseline's; a top rank with a candidate's
    settings gets both labels."""
    if rank <= 0:
        return [BINARY_DEFAULT_LABEL]
    labels = [BEST_LABEL if rank == 1 else f"rank {rank}"]
    if any(same_settings(settings, candidate) for candidate in baseline.candidates):
        labels.append(BINARY_DEFAULT_LABEL)
    return labels


def _mean_val(group: Sequence[TrialResult]) -> float:
    values = [t.final_val_accuracy for t in group if t.final_val_accuracy is not None]
    return float(np.mean(values)) if values else -1.0


def _kept_ranks(final_trials: Sequence[TrialResult]) -> list[int]:
    """The top ranks in order, then the baseline candidate with the best validation accuracy
    (the others were its learning-rate search)."""
    ranks = sorted({t.rank for t in final_trials if t.rank is not None})
    top = [rank for rank in ranks if rank > 0]
    candidates = [rank for rank in ranks if rank <= 0]
    if not candidates:
        return top
    best = max(candidates, key=lambda r: (_mean_val([t for t in final_trials if t.rank == r]), r))
    return [*top, best]


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
    baseline: Baseline,
    seeds: Sequence[int],
) -> list[FinalEntry]:
    """Stage 3's entries: one per label (a top setting that is also the baseline, twice).

    Args:
        final_trials: the seeded runs (``rank`` and ``seed`` set).
        search_trials: the search, for each setting's best validation accuracy there.
        probabilities: trial id -> its test softmax and labels (None: not saved).
        baseline: the binary baseline's candidates and how it was chosen.
        seeds: the seeds every setting was run with.
    """
    entries = []
    for rank in _kept_ranks(final_trials):
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
        for label in _labels(rank, settings, baseline):
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
                    rank=max(rank, 0),
                    search_val_accuracy=max(matches) if matches else None,
                    basis=baseline.basis if label == BINARY_DEFAULT_LABEL else None,
                )
            )
    return entries
