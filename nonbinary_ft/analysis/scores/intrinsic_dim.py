"""Intrinsic dimension of the features by TwoNN (Facco et al., 2017; thesis section 2.2.1)."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.neighbors import NearestNeighbors

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
    check_features,
)
from nonbinary_ft.analysis.scores.registry import register
from nonbinary_ft.errors import AnalysisError, ConfigError

__all__ = ["IntrinsicDimension", "twonn_dimension"]

logger = logging.getLogger(__name__)


def twonn_dimension(points: np.ndarray, discard_fraction: float = 0.1) -> float:
    """Estimate the intrinsic dimension of a point cloud with TwoNN (Facco et al., 2017).

    For each point, ``mu = r2 / r1`` is the ratio of the distances to its second and first
    nearest neighbours; on a d-dimensional manifold ``mu`` follows a Pareto law with
    ``-log(1 - F(mu)) = d * log(mu)``. The ``mu`` are sorted, the empirical CDF is
    ``F_i = i / N``, the largest ``discard_fraction`` of them (the noisy tail) are dropped,
    and ``d`` is the slope of a least-squares line through the origin. Points with an exact
    duplicate (``r1 = 0``) are left out, as their ratio is undefined.

    Args:
        points: ``(N, D)`` coordinates, ``N >= 3``.
        discard_fraction: fraction of the largest ratios left out of the fit, in ``[0, 1)``.

    Returns:
        The estimated dimension (a float; not rounded).

    Raises:
        AnalysisError: if the points are malformed, ``discard_fraction`` is out of range, or
            fewer than 3 distinct points remain (``ScoreNotComputable``, a subclass).
    """
    if not 0.0 <= discard_fraction < 1.0:
        raise AnalysisError(f"discard_fraction must be in [0, 1) but got {discard_fraction!r}.")
    x = check_features(points, what="points")
    if x.shape[0] < 3:
        raise ScoreNotComputable(f"TwoNN needs at least 3 points but got {x.shape[0]}")
    distances, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    # Column 0 is the point itself (distance 0), unless it has a duplicate listed first:
    # either way r1, r2 are the two smallest distances to *other* points.
    r1, r2 = distances[:, 1], distances[:, 2]
    distinct = r1 > 0
    if not distinct.all():
        logger.debug("TwoNN: leaving out %d duplicated points", int((~distinct).sum()))
    mu = np.sort(r2[distinct] / r1[distinct])
    n = mu.size
    if n < 3:
        raise ScoreNotComputable(f"TwoNN needs at least 3 distinct points but got {n}")
    # The last point has F = 1 and -log(0) = inf: always leave it out.
    n_fit = min(int(np.floor(n * (1.0 - discard_fraction))), n - 1)
    x_log = np.log(mu[:n_fit])
    y_log = -np.log(1.0 - np.arange(1, n_fit + 1) / n)
    denominator = float(x_log @ x_log)
    if n_fit < 2 or denominator == 0.0:
        raise ScoreNotComputable(
            "TwoNN is undefined: every point's two nearest neighbours are equally far"
        )
    return float(x_log @ y_log) / denominator


@register
class IntrinsicDimension(TransferabilityScore):
    """Intrinsic dimension of the target features, by :func:`twonn_dimension`.

    The thesis (after Ansuini et al., 2019) reads a *low* intrinsic dimension of the last
    hidden layer as a good representation, so ``higher_is_better`` is False. The labels are
    not used (only checked, like every score's input).

    Args:
        discard_fraction: fraction of the largest neighbour-distance ratios left out.
    """

    name = "intrinsic_dim"
    higher_is_better = False

    def __init__(self, discard_fraction: float = 0.1) -> None:
        self.discard_fraction = discard_fraction

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        fraction = self.discard_fraction
        if isinstance(fraction, bool) or not (
            isinstance(fraction, (int, float)) and 0.0 <= fraction < 1.0
        ):
            raise ConfigError("IntrinsicDimension.discard_fraction", "a float in [0, 1)", fraction)
        return twonn_dimension(features, fraction)
