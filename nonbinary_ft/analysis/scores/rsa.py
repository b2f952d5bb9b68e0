"""RSA delta (Bemmerl, 2021, section 2.2.3): between- minus within-class dissimilarity."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.registry import register

__all__ = ["RSADelta"]


@register
class RSADelta(TransferabilityScore):
    """RSA delta: mean between-class minus mean within-class representational dissimilarity.

    As the thesis defines it: the representational dissimilarity matrix (RDM) holds
    ``1 - rho(x_i, x_j)`` for every pair of samples, ``rho`` being Pearson's correlation
    between the two feature vectors (across the feature dimensions). The delta is the mean
    of the entries between samples of *different* classes (the "off-diagonal") minus the
    mean of the entries between *distinct* samples of the same class (the "label diagonal",
    without the zero diagonal ``i = j``). The means are over pairs, so a class weighs by its
    number of pairs, as it does in the matrix.

    It lies in ``[-2, 2]``; larger means better separated classes. The RDM is never built:
    with the rows standardised, block sums of correlations are squared norms of sums of
    rows, so memory stays ``O(N * D)``.
    """

    name = "rsa_delta"
    higher_is_better = True

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        if features.shape[1] < 2:
            raise ScoreNotComputable(
                "Pearson correlation between samples needs at least 2 feature dimensions"
            )
        centred = features - features.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1)
        constant = np.flatnonzero(norms <= 1e-12 * max(float(np.abs(features).max()), 1e-300))
        if constant.size:
            raise ScoreNotComputable(
                f"{constant.size} samples (e.g. row {constant[0]}) have the same value in every "
                "feature, so their Pearson correlation is undefined"
            )
        z = centred / norms[:, None]  # rho_ij = z_i . z_j
        counts = np.bincount(codes)
        n_within = float(np.sum(counts * (counts - 1)))
        if n_within == 0:
            raise ScoreNotComputable("every class has a single sample: no within-class pairs")
        class_sums = np.zeros((counts.size, z.shape[1]))
        np.add.at(class_sums, codes, z)
        # sum_{i, j in class k} rho_ij = |sum_{i in k} z_i|^2, which includes the N ones of
        # the diagonal.
        block_total = float(np.sum(class_sums**2))
        all_total = float(np.sum(class_sums.sum(axis=0) ** 2))
        n = codes.size
        mean_within_rho = (block_total - n) / n_within
        mean_between_rho = (all_total - block_total) / float(n * n - np.sum(counts**2))
        # (1 - rho_between) - (1 - rho_within)
        return mean_within_rho - mean_between_rho
