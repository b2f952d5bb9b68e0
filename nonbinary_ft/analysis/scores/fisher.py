"""Normalised Fisher score: how far apart the classes are, relative to their spread."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.registry import register
from nonbinary_ft.errors import ConfigError

__all__ = ["FisherScore", "ledoit_wolf_shrinkage"]


@register
class FisherScore(TransferabilityScore):
    """Normalised Fisher score ``Tr(Sw^-1 Sb) / K`` (the paper's section 4.1).

    With N samples, K classes, class sizes ``n_k``, class means ``m_k`` and overall mean
    ``m`` (both matrices are covariances, i.e. divided by N, and classes are weighted by
    their size):

    - ``Sw = 1/N * sum_i (x_i - m_{y_i})(x_i - m_{y_i})^T`` (pooled within-class covariance);
    - ``Sb = sum_k n_k/N * (m_k - m)(m_k - m)^T`` (between-class covariance), so that
      ``Sw + Sb`` is the total covariance;
    - ``Sw`` is shrunk towards a multiple of the identity with the same trace,
      ``(1 - s) * Sw + s * Tr(Sw)/D * I``, because features usually outnumber the samples
      per class and ``Sw`` is then singular.

    The value is invariant to rotating, translating and scaling the features. Larger
    means better separated classes.

    Args:
        shrinkage: ``"ledoit_wolf"`` (default) estimates ``s`` from the within-class
            residuals with scikit-learn's Ledoit-Wolf formula (:func:`ledoit_wolf_shrinkage`);
            a float in ``[0, 1]`` fixes ``s``; ``0`` means no shrinkage.
    """

    name = "fisher"
    higher_is_better = True

    def __init__(self, shrinkage: str | float = "ledoit_wolf") -> None:
        self.shrinkage = shrinkage

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        n, d = features.shape
        k = int(codes.max()) + 1
        counts = np.bincount(codes, minlength=k)
        singles = self.classes_[counts == 1]
        if singles.size:
            raise ScoreNotComputable(
                "the Fisher score is undefined for a class with one sample "
                f"(class {', '.join(str(c) for c in singles)}): its within-class spread is unknown"
            )
        means = np.zeros((k, d))
        np.add.at(means, codes, features)
        means /= counts[:, None]
        residuals = features - means[codes]
        # Sw enters only through R^T R (D x D) or R R^T (N x N), whose non-zero spectra agree:
        # with fewer samples than dimensions the work is done in the smaller one.
        dual = n < d
        gram = residuals @ residuals.T if dual else residuals.T @ residuals
        trace = float(np.trace(gram)) / n
        if trace <= 0.0:
            raise ScoreNotComputable(
                "the features do not vary within any class, so the Fisher score is infinite"
            )
        s = self._shrinkage_coefficient(residuals, gram)
        if s == 0.0 and n - k < d:
            # Sw has rank at most N - K, so it cannot be inverted.
            raise ScoreNotComputable(
                f"the within-class covariance is singular ({d} dimensions but only "
                f"{n - k} degrees of freedom); use shrinkage='ledoit_wolf' or a shrinkage > 0"
            )
        # Sb = B^T B with rows sqrt(n_k/N) (m_k - m), so Tr(Sw^-1 Sb) = sum(B^T * Sw^-1 B^T).
        b = (means - features.mean(axis=0)) * np.sqrt(counts / n)[:, None]
        ridge, scale = s * trace / d, (1.0 - s) / n  # shrunk Sw = ridge * I + scale * R^T R
        try:
            if dual:
                # Woodbury: (c I + a R^T R)^-1 = (I - a R^T (c I + a R R^T)^-1 R) / c, so
                # only an N x N system is solved (ridge > 0 here: s = 0 was refused above).
                projected = residuals @ b.T
                factor = scipy.linalg.cho_factor(ridge * np.eye(n) + scale * gram)
                solved = scipy.linalg.cho_solve(factor, projected)
                value = (np.sum(b**2) - scale * np.sum(projected * solved)) / ridge
            else:
                factor = scipy.linalg.cho_factor(ridge * np.eye(d) + scale * gram)
                value = np.sum(b.T * scipy.linalg.cho_solve(factor, b.T))
        except np.linalg.LinAlgError as error:
            raise ScoreNotComputable(
                "the within-class covariance is singular; use a larger shrinkage"
            ) from error
        return float(value) / k

    def _shrinkage_coefficient(self, residuals: np.ndarray, gram: np.ndarray) -> float:
        """The shrinkage ``s`` in ``[0, 1]``, from the parameter or Ledoit-Wolf."""
        shrinkage = self.shrinkage
        if shrinkage == "ledoit_wolf":
            # The residuals are centred per class, so their uncentred covariance is Sw.
            return ledoit_wolf_shrinkage(residuals, gram)
        if (
            isinstance(shrinkage, (int, float))
            and not isinstance(shrinkage, bool)
            and 0.0 <= shrinkage <= 1.0
        ):
            return float(shrinkage)
        raise ConfigError(
            "FisherScore.shrinkage", "'ledoit_wolf' or a float in [0, 1]", got=shrinkage
        )


def ledoit_wolf_shrinkage(centred: np.ndarray, gram: np.ndarray) -> float:
    """Ledoit-Wolf shrinkage of the covariance ``X^T X / N`` of already centred rows.

    The formula of :func:`sklearn.covariance.ledoit_wolf_shrinkage` with
    ``assume_centered=True``, whose two D x D products are replaced: the sum of squares of
    ``X^T X`` is that of ``X X^T``, and the sum of ``(X^2)^T X^2`` is ``sum_i |x_i|^4``. So
    the cost is that of whichever Gram matrix the caller has.

    Args:
        centred: ``(N, D)`` centred rows X.
        gram: ``X^T X`` or ``X X^T``.
    """
    n, d = centred.shape
    if d == 1:
        return 0.0  # as scikit-learn: with one feature every shrinkage gives the same
    norms2 = np.einsum("ij,ij->i", centred, centred)
    trace = norms2.sum() / n  # Tr(X^T X / N)
    mu = trace / d
    delta_ = np.sum(gram**2) / n**2
    beta_ = (np.sum(norms2**2) / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace + d * mu**2) / d
    beta = min(beta_, delta)
    return 0.0 if beta == 0 else float(beta / delta)
