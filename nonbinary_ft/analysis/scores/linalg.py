"""Linear algebra the scores share."""

from __future__ import annotations

import numpy as np

__all__ = ["wide_svd"]


def wide_svd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and left singular vectors of an ``(N, D)`` matrix with ``N <= D``.

    ``M^T = Q R`` gives ``M = R^T Q^T``: the N x N matrix ``R^T`` has M's singular values and
    left singular vectors, so the D x N factors (Q, and the right singular vectors a full
    SVD would build) are never formed. Unlike an eigendecomposition of ``M M^T``, small
    singular values keep their accuracy.

    Returns:
        ``(u, s)``: ``(N, N)`` left singular vectors and the ``(N,)`` singular values,
        in descending order.
    """
    triangle = np.linalg.qr(matrix.T, mode="r")
    u, s, _ = np.linalg.svd(triangle.T)
    return u, s
