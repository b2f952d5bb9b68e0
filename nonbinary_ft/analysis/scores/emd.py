"""EMD domain similarity (Cui et al., 2018) between the source and the target data set."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from nonbinary_ft.analysis.scores.base import (
    SourceContext,
    TransferabilityScore,
    check_features,
    check_labels,
)
from nonbinary_ft.analysis.scores.registry import register
from nonbinary_ft.errors import AnalysisError, ConfigError

__all__ = ["EMDSimilarity", "class_means"]


def class_means(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean feature and the relative frequency of each class.

    Args:
        features: ``(N, D)`` features.
        labels: ``(N,)`` integer labels.

    Returns:
        ``(means, weights)``: ``(C, D)`` class means and ``(C,)`` frequencies summing to 1,
        classes in sorted label order.
    """
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((counts.size, features.shape[1]))
    np.add.at(means, codes, features)
    means /= counts[:, None]
    return means, counts / counts.sum()


@register
class EMDSimilarity(TransferabilityScore):
    """EMD domain similarity ``exp(-gamma * EMD(source, target))`` of Cui et al. (2018).

    Each domain is a set of points, its class-mean features, weighted by class frequency
    (normalised to sum to 1). The Earth Mover's Distance between the two weighted sets uses
    the Euclidean ground distance; since both weights sum to 1, no normalisation of the
    flow is needed. The transport is solved exactly with POT (``ot.emd2``). The distance
    itself is stored in ``emd_``. Larger similarity means closer domains (the paper found it
    a poor predictor of how well the weights fit; it is reported anyway).

    Needs ``context.source_features`` and ``context.source_labels``: features of a sample of
    the source data set, from the same backbone as the target features.

    Args:
        gamma: the scale in ``exp(-gamma * EMD)``; Cui et al. use 0.01.
    """

    name = "emd"
    higher_is_better = True
    requires = frozenset({"source_features"})

    emd_: float

    def __init__(self, gamma: float = 0.01) -> None:
        self.gamma = gamma

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        if isinstance(self.gamma, bool) or not (
            isinstance(self.gamma, (int, float)) and self.gamma > 0
        ):
            raise ConfigError("EMDSimilarity.gamma", "a float in (0, inf)", got=self.gamma)
        source = check_features(context.source_features, what="source_features")
        source_labels = check_labels(context.source_labels, source.shape[0], what="source_labels")
        if source.shape[1] != features.shape[1]:
            raise AnalysisError(
                f"source_features have {source.shape[1]} dimensions but the target features "
                f"have {features.shape[1]}; extract both with the same backbone and layer."
            )
        # Lazy import: POT loads its optional backends on import, which takes seconds.
        import ot

        source_means, source_weights = class_means(source, source_labels)
        target_means, target_weights = class_means(features, codes)
        cost = cdist(source_means, target_means, metric="euclidean")
        self.emd_ = float(ot.emd2(source_weights, target_weights, cost, numItermax=1_000_000))
        return float(np.exp(-self.gamma * self.emd_))
