"""Normalised Fisher score: how far apart the classes are, relative to their spread."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.covariance import ledoit_wolf_shrinkage

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.registry import register
from nonbinary_ft.errors import ConfigError

__all__ = ["FisherScore"]


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
            residuals with the Ledoit-Wolf formula
            (:func:`sklearn.covariance.ledoit_wolf_shrinkage`); a float in ``[0, 1]`` fixes
            ``s``; ``0`` means no shrinkage.
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
        within = residuals.T @ residuals / n
        trace = float(np.trace(within))
        if trace <= 0.0:
            raise ScoreNotComputable(
                "the features do not vary within any class, so the Fisher score is infinite"
            )
        s = self._shrinkage_coefficient(residuals)
        if s == 0.0 and n - k < d:
            # Sw has rank at most N - K, so it cannot be inverted.
            raise ScoreNotComputable(
                f"the within-class covariance is singular ({d} dimensions but only "
                f"{n - k} degrees of freedom); use shrinkage='ledoit_wolf' or a shrinkage > 0"
            )
        within = (1.0 - s) * within + s * (trace / d) * np.eye(d)
        # Sb = B^T B with rows sqrt(n_k/N) (m_k - m): Tr(Sw^-1 Sb) = sum(B^T * Sw^-1 B^T),
        # a D x K solve instead of a D x D one.
        b = (means - features.mean(axis=0)) * np.sqrt(counts / n)[:, None]
        try:
            factor = scipy.linalg.cho_factor(within)
        except np.linalg.LinAlgError as error:
            raise ScoreNotComputable(
                "the within-class covariance is singular; use a larger shrinkage"
            ) from error
        solved = scipy.linalg.cho_solve(factor, b.T)
        return float(np.sum(b.T * solved)) / k

    def _shrinkage_coefficient(self, residuals: np.ndarray) -> float:
        """The shrinkage ``s`` in ``[0, 1]``, from the parameter or Ledoit-Wolf."""
        shrinkage = self.shrinkage
        if shrinkage == "ledoit_wolf":
            # The residuals are centred per class, so their uncentred covariance is Sw.
            return float(ledoit_wolf_shrinkage(residuals, assume_centered=True))
        if (
            isinstance(shrinkage, (int, float))
            and not isinstance(shrinkage, bool)
            and 0.0 <= shrinkage <= 1.0
        ):
            return float(shrinkage)
        raise ConfigError(
            "FisherScore.shrinkage", "'ledoit_wolf' or a float in [0, 1]", got=shrinkage
        )
