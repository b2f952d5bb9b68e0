"""H-score (Bao et al., 2019): class-conditional feature variance relative to the total."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.registry import register
from nonbinary_ft.errors import ConfigError

__all__ = ["HScore"]


@register
class HScore(TransferabilityScore):
    """H-score ``tr( cov(f)^+ cov(E[f | y]) )``.

    ``cov(f)`` is the covariance of the features and ``cov(E[f | y])`` the covariance of the
    features with each sample replaced by its class mean, i.e.
    ``sum_k n_k/N * (m_k - m)(m_k - m)^T``. Both divide by N; the ratio does not depend on
    that choice. ``^+`` is the Moore-Penrose pseudo-inverse: eigenvalues of ``cov(f)`` below
    ``rcond`` times the largest are treated as zero (no ridge), so directions in which the
    features do not vary are ignored rather than blown up.

    The value lies in ``[0, K - 1]``; larger predicts better transfer. With fewer samples
    than dimensions it saturates near ``K - 1`` (the pseudo-inverse whitens every direction
    the few samples span), so compare H-scores on samples of equal size.

    Args:
        rcond: relative cut-off of the pseudo-inverse.
    """

    name = "h_score"
    higher_is_better = True

    def __init__(self, rcond: float = 1e-10) -> None:
        self.rcond = rcond

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        if isinstance(self.rcond, bool) or not (
            isinstance(self.rcond, (int, float)) and 0.0 <= self.rcond < 1.0
        ):
            raise ConfigError("HScore.rcond", "a float in [0, 1)", got=self.rcond)
        n = codes.size
        centred = features - features.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / n)
        if eigenvalues[-1] <= 0.0:
            raise ScoreNotComputable("the features are constant, so their covariance is zero")
        keep = eigenvalues > self.rcond * eigenvalues[-1]
        counts = np.bincount(codes)
        means = np.zeros((counts.size, features.shape[1]))
        np.add.at(means, codes, centred)
        means /= counts[:, None]
        # cov(E[f|y]) = B^T B with rows sqrt(n_k/N) (m_k - m), so the trace is a sum over
        # the kept eigen-directions of |B v|^2 / lambda.
        b = means * np.sqrt(counts / n)[:, None]
        along = b @ eigenvectors[:, keep]
        return float(np.sum(along**2 / eigenvalues[keep]))
