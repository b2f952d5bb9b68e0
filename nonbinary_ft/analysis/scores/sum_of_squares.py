"""Sum-of-squares ratio (Bemmerl, 2021, section 2.2.2): within-class over total scatter."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.registry import register

__all__ = ["SumOfSquares"]


@register
class SumOfSquares(TransferabilityScore):
    """Sum-of-squares ratio ``SSW / TSS``, the ANOVA view of how well labels cluster.

    With class centroids ``c_k`` and overall mean ``m``:
    ``SSW = sum_i |x_i - c_{y_i}|^2``, ``SSB = sum_k n_k |c_k - m|^2``,
    ``TSS = sum_i |x_i - m|^2 = SSW + SSB``. Distances are *squared* Euclidean: the thesis
    prints them unsquared in its equations 2.1 and 2.2, but its equation 2.3 (the ANOVA
    decomposition it relies on) only holds for squares.

    It lies in ``[0, 1]``; *smaller* means tighter, better separated classes
    (``higher_is_better`` is False). The parts are kept in ``ssw_``, ``ssb_`` and ``tss_``.
    """

    name = "sum_of_squares"
    higher_is_better = False

    ssw_: float
    ssb_: float
    tss_: float

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        counts = np.bincount(codes)
        centroids = np.zeros((counts.size, features.shape[1]))
        np.add.at(centroids, codes, features)
        centroids /= counts[:, None]
        mean = features.mean(axis=0)
        self.ssw_ = float(np.sum((features - centroids[codes]) ** 2))
        self.ssb_ = float(np.sum(counts * np.sum((centroids - mean) ** 2, axis=1)))
        self.tss_ = float(np.sum((features - mean) ** 2))
        if self.tss_ <= 0.0:
            raise ScoreNotComputable("all samples have the same features (total scatter is 0)")
        return self.ssw_ / self.tss_
