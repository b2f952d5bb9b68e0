"""The whole analysis in one call, and its steps for callers that interleave them.

``analyse`` runs, cheapest first: features (cached), the linear probe, the transferability
scores, the model's layer count, then the from-scratch baseline (unless switched off or
given), and decides the regime and the recommendation. The sweep's analysis actor calls the
same steps one at a time (``extract_features``, ``fixed_feature_accuracy``,
``transfer_scores``, ``decide_regime`` on partial :class:`Evidence`, ``scratch_baseline``
last), so nothing here knows of Ray.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nonbinary_ft.analysis.features import FeatureSet, extract_features, source_sample_features
from nonbinary_ft.analysis.probe import ProbeResult, fixed_feature_accuracy
from nonbinary_ft.analysis.recommend import Recommendation, recommend
from nonbinary_ft.analysis.regime import Evidence, Regime, decide_regime
from nonbinary_ft.analysis.scores import (
    ScoreResult,
    SourceContext,
    compute_scores,
    get_score,
    list_scores,
)
from nonbinary_ft.analysis.scratch import ScratchResult, given_scratch, scratch_baseline
from nonbinary_ft.analysis.threads import one_thread_when_small
from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.errors import DataError

__all__ = [
    "SCORE_ORDER",
    "AnalysisReport",
    "analyse",
    "count_layers",
    "transfer_scores",
    "stratified_subsample",
]

logger = logging.getLogger(__name__)

# The paper's scores first (Fisher, EMD), then the others; any score registered later
# follows in name order.
SCORE_ORDER = (
    "fisher",
    "emd",
    "logme",
    "leep",
    "nce",
    "h_score",
    "rsa_delta",
    "sum_of_squares",
    "intrinsic_dim",
)


@dataclass(frozen=True)
class AnalysisReport:
    """Everything the analysis found, and what it recommends.

    Attributes:
        name, model: the experiment and its backbone.
        num_layers: the model's layer count L.
        features: summary of the cached features (:meth:`FeatureSet.to_dict`).
        probe: the fixed-feature accuracy.
        scratch: the from-scratch baseline, or ``None`` (``scratch_note`` says why).
        scores: every transferability score, computed or with its reason.
        evidence, regime, recommendation: the decision and its outcome.
    """

    name: str
    model: str
    num_layers: int
    features: dict[str, Any]
    probe: ProbeResult
    scratch: ScratchResult | None
    scratch_note: str | None
    scores: dict[str, ScoreResult]
    evidence: Evidence
    regime: Regime
    recommendation: Recommendation

    def to_dict(self) -> dict[str, Any]:
        """The analysis document (``analysis.json``, ``nbft recommend --json``)."""
        return {
            "name": self.name,
            "model": self.model,
            "num_layers": self.num_layers,
            "table1": self.evidence.table1(),
            "regime": self.regime.to_dict(),
            "recommendation": self.recommendation.to_dict(),
            "probe": self.probe.to_dict(),
            "scratch": self.scratch.to_dict() if self.scratch else None,
            "scratch_note": self.scratch_note,
            "scores": {
                name: {
                    "value": result.value,
                    "reason": result.reason,
                    "higher_is_better": result.higher_is_better,
                }
                for name, result in self.scores.items()
            },
            "features": self.features,
        }


def stratified_subsample(labels: np.ndarray, max_samples: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most about ``max_samples`` rows, every class in proportion (all if fewer).

    Each class keeps at least two rows when it has them, so that within-class scores stay
    defined; the result is sorted and depends only on the labels and the seed.
    """
    if max_samples is None or labels.size <= max_samples:
        return np.arange(labels.size)
    rng = np.random.default_rng(seed)
    share = max_samples / labels.size
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(members.size, max(2, int(round(share * members.size))))
        keep.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(keep))


def _score_names(config: ExperimentConfig) -> list[str]:
    if config.analysis.scores is not None:
        for name in config.analysis.scores:
            get_score(name)  # an unknown name fails here, listing the known ones
        return list(config.analysis.scores)
    known = list_scores()
    return [name for name in SCORE_ORDER if name in known] + sorted(
        name for name in known if name not in SCORE_ORDER
    )


def transfer_scores(
    features: FeatureSet,
    config: ExperimentConfig,
    source: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, ScoreResult]:
    """The transferability scores of the training split's pre-trained features.

    Scores that cannot be computed (no source head for LEEP/NCE, no source sample for EMD,
    a class with one sample for Fisher, ...) come back with their reason, never a value.

    Args:
        features: the cached features.
        config: the experiment; uses ``analysis.scores`` and ``analysis.score_max_samples``.
        source: ``(features, labels)`` of a source sample for EMD; default: extracted from
            ``analysis.source_sample`` when set.

    Raises:
        AnalysisError: an unknown score name in ``analysis.scores``.
        ConfigError, ModelError, DataError: the source sample cannot be extracted.
    """
    names = _score_names(config)
    train = features.train
    rows = stratified_subsample(train.labels, config.analysis.score_max_samples, config.train.seed)
    if source is None and "emd" in names:
        source = source_sample_features(config)
    context = SourceContext(
        source_probs=None if train.source_probs is None else train.source_probs[rows],
        source_features=source[0] if source is not None else None,
        source_labels=source[1] if source is not None else None,
    )
    sample = train.features[rows]
    with one_thread_when_small(sample.size):
        results = compute_scores(sample, train.labels[rows], context, names=names)
    for result in results.values():
        if result.computed:
            logger.info("score %s = %.4g", result.name, result.value)
    return results


def count_layers(config: ExperimentConfig, num_classes: int) -> int:
    """The model's layer count L (timm's fine-grained groups), built without its weights.

    Raises:
        ConfigError: an unknown model name.
    """
    from nonbinary_ft.models.layers import build_layer_map
    from nonbinary_ft.models.loading import create_backbone

    random_init = config.model.architecture_only()
    return len(build_layer_map(create_backbone(random_init, num_classes), config.model.name))


def _scratch(
    config: ExperimentConfig, workdir: Path, run: bool, given: ScratchResult | None
) -> tuple[ScratchResult | None, str | None]:
    known = config.analysis.scratch
    if given is not None:
        return given, "given by the caller"
    if known.val_accuracy is not None:
        return given_scratch(
            known.val_accuracy, known.test_accuracy
        ), "analysis.scratch.val_accuracy"
    if not run:
        return None, "not run (--no-scratch): the regime is provisional"
    if not known.enabled:
        return None, "not run (analysis.scratch.enabled is false): the regime is provisional"
    result = scratch_baseline(config, workdir / "scratch")
    note = "the from-scratch run diverged" if not result.usable else None
    return result, note


def analyse(
    config: ExperimentConfig,
    workdir: str | Path,
    scratch: bool = True,
    scratch_result: ScratchResult | None = None,
    features: FeatureSet | None = None,
) -> AnalysisReport:
    """Measure how well the pre-trained weights fit the target and recommend settings.

    Args:
        config: the experiment (its ``analysis`` section sets the budget and thresholds).
        workdir: where the from-scratch run keeps its checkpoint (``workdir/scratch``).
        scratch: train the from-scratch baseline (when ``analysis.scratch.enabled`` too);
            False decides on the cheap evidence alone, provisionally.
        scratch_result: a from-scratch result known already; nothing is trained then.
        features: features extracted already; default: :func:`extract_features` (cached).

    Raises:
        ConfigError, ModelError, DataError: bad model, weights or data (fewer than two
            classes included).
        AnalysisError: features that are NaN.
    """
    if features is None:
        features = extract_features(config)
    if len(features.classes) < 2:
        raise DataError(
            f"The target data set has {len(features.classes)} class; the analysis needs at least 2."
        )
    probe = fixed_feature_accuracy(features, config.analysis.probe)
    logger.info(
        "fixed-feature accuracy: val %.4f (weight decay %g)",
        probe.val_accuracy,
        probe.weight_decay,
    )
    scores = transfer_scores(features, config)
    num_layers = count_layers(config, len(features.classes))
    scratch_res, note = _scratch(config, Path(workdir), scratch, scratch_result)
    evidence = Evidence.from_parts(probe, scores, scratch_res)
    regime = decide_regime(evidence, config.analysis)
    logger.info("regime: %s (%s)", regime.label, regime.rule)
    return AnalysisReport(
        name=config.name,
        model=config.model.name,
        num_layers=num_layers,
        features=features.to_dict(),
        probe=probe,
        scratch=scratch_res,
        scratch_note=note,
        scores=scores,
        evidence=evidence,
        regime=regime,
        recommendation=recommend(regime, config, num_layers),
    )
