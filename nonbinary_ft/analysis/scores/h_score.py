"""H-score (Bao et al., 2019): class-conditional feature variance relative to the total."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.linalg import wide_svd
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
        n, d = features.shape
        centred = features - features.mean(axis=0)
        counts = np.bincount(codes)
        if n < d:
            # With fewer samples than dimensions, work with centred = U S V^T (N x N factors):
            # cov(f) = V (S^2 / N) V^T, and B V = M centred V = M U S, where M averages the
            # rows of each class and weighs class k by sqrt(n_k / N). Each term
            # |B v|^2 / lambda is then N |M u|^2, with no small eigenvalue to divide by.
            left, singular = wide_svd(centred)
            keep = self._kept(singular**2)
            members = (codes == np.arange(counts.size)[:, None]) / np.sqrt(counts * n)[:, None]
            return float(n * np.sum((members @ left[:, keep]) ** 2))
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / n)
        keep = self._kept(eigenvalues)
        means = np.zeros((counts.size, d))
        np.add.at(means, codes, centred)
        means /= counts[:, None]
        # cov(E[f|y]) = B^T B with rows sqrt(n_k/N) (m_k - m), so the trace is a sum over
        # the kept eigen-directions v of cov(f) of |B v|^2 / lambda.
        b = means * np.sqrt(counts / n)[:, None]
        along = b @ eigenvectors[:, keep]
        return float(np.sum(along**2 / eigenvalues[keep]))

    def _kept(self, eigenvalues: np.ndarray) -> np.ndarray:
        """Which eigenvalues the pseudo-inverse keeps: those above ``rcond`` x the largest."""
        largest = eigenvalues.max()
        if largest <= 0.0:
            raise ScoreNotComputable("the features are constant, so their covariance is zero")
        return eigenvalues > self.rcond * largest
