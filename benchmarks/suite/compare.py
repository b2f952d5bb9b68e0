"""The controlled suite's regime comparison: each regime's recommended settings, run on a target.

:func:`compare_regimes` fine-tunes a target with the table-7 settings of both regimes, with the
same budget and seeds, and says which regime wins: the check that the analysis's prediction
(:mod:`benchmarks.suite.build`) picks the better one.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from nonbinary_ft.analysis.recommend import recommended_settings
from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.vocabulary import RegimeLabel

__all__ = ["RegimeRuns", "RegimeComparison", "compare_regimes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegimeRuns:
    """One regime's recommended settings run on a target, once per seed.

    Attributes:
        regime: the regime whose table-7 settings were run.
        settings: those settings (JSON-ready).
        val_accuracies, test_accuracies: per seed, after the last epoch.
    """

    regime: RegimeLabel
    settings: dict[str, Any]
    val_accuracies: tuple[float, ...]
    test_accuracies: tuple[float, ...]

    @property
    def mean_val(self) -> float:
        """Mean validation accuracy over the seeds."""
        return statistics.fmean(self.val_accuracies)

    @property
    def mean_test(self) -> float:
        """Mean test accuracy over the seeds."""
        return statistics.fmean(self.test_accuracies)


@dataclass(frozen=True)
class RegimeComparison:
    """Both regimes' recommended settings on one target, same data, budget and seeds.

    Attributes:
        target: the experiment's name.
        seeds: the training seeds.
        runs: regime label -> its runs.
    """

    target: str
    seeds: tuple[int, ...]
    runs: dict[str, RegimeRuns] = field(default_factory=dict)

    def winner(self, metric: Literal["test", "val"] = "test") -> RegimeLabel:
        """The regime with the higher mean accuracy (``fits_well`` on a tie)."""
        well, poorly = self.runs["fits_well"], self.runs["fits_poorly"]
        if metric == "test":
            return "fits_well" if well.mean_test >= poorly.mean_test else "fits_poorly"
        return "fits_well" if well.mean_val >= poorly.mean_val else "fits_poorly"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the means and the winner on test accuracy."""
        return {
            "target": self.target,
            "seeds": list(self.seeds),
            "runs": {
                label: {**asdict(runs), "mean_val": runs.mean_val, "mean_test": runs.mean_test}
                for label, runs in self.runs.items()
            },
            "winner": self.winner(),
        }


def compare_regimes(
    config: ExperimentConfig, seeds: tuple[int, ...] = (0, 1, 2), num_layers: int | None = None
) -> RegimeComparison:
    """Run the ``fits_well`` and the ``fits_poorly`` recommended settings on one target.

    Both come from :func:`~nonbinary_ft.analysis.recommend.recommended_settings` relative to
    ``config.settings`` and the model's layer count, and run with
    :func:`~nonbinary_ft.training.trial.run_trial` on the same data and budget
    (``config.train.epochs``), once per training seed.

    Args:
        config: a target's experiment (e.g. ``suite.near``).
        seeds: training seeds (weights of the new layers, data order, augmentation).
        num_layers: the model's layer count; default: counted from the model.

    Raises:
        ConfigError, ModelError, DataError: a config that cannot be trained.
    """
    from nonbinary_ft.analysis.runner import count_layers
    from nonbinary_ft.config import with_settings
    from nonbinary_ft.training.trial import run_trial

    # The layer count does not depend on the head's size, so any class count will do.
    layers = num_layers or count_layers(config, 2)
    runs: dict[str, RegimeRuns] = {}
    with tempfile.TemporaryDirectory(prefix="regime-runs-") as scratch_dir:
        for label in ("fits_well", "fits_poorly"):
            settings, _ = recommended_settings(label, config.settings, layers)
            trial = with_settings(config, settings.model_dump(mode="json"))
            vals, tests = [], []
            for seed in seeds:
                seeded = trial.model_copy(
                    update={"train": trial.train.model_copy(update={"seed": seed})}
                )
                result = run_trial(seeded, lambda metrics, path: None, Path(scratch_dir) / label)
                vals.append(result.history[-1].val_accuracy or 0.0 if result.history else 0.0)
                tests.append(float(result.test_accuracy or 0.0))
                logger.info(
                    "%s, %s settings, seed %d: val %.3f test %.3f",
                    config.name,
                    label,
                    seed,
                    vals[-1],
                    tests[-1],
                )
            runs[label] = RegimeRuns(
                label, settings.model_dump(mode="json"), tuple(vals), tuple(tests)
            )
    return RegimeComparison(config.name, tuple(seeds), runs)
