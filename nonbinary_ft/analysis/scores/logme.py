"""LogME (You et al., 2021): the maximum evidence of a Bayesian linear model on the features."""

from __future__ import annotations

import logging

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.linalg import wide_svd
from nonbinary_ft.analysis.scores.registry import register

__all__ = ["LogME"]

logger = logging.getLogger(__name__)

# Added to the denominators of the alpha and beta updates, as in the reference
# implementation: it keeps them finite when the fit is perfect or the target is orthogonal
# to the features.
_EPSILON = 1e-5


@register
class LogME(TransferabilityScore):
    """LogME: log maximum evidence per sample, averaged over one-hot targets.

    For each class k, the target ``y = 1[label == k]`` is modelled as ``y = F w + noise`` with
    prior ``w ~ N(0, I / alpha)`` and noise ``N(0, I / beta)``; the log evidence
    ``log p(y | F, alpha, beta) = log N(y; 0, I / beta + F F^T / alpha)`` is maximised over
    ``(alpha, beta)`` with MacKay's fixed-point updates, computed in the eigenbasis of
    ``F^T F`` (the "SVD trick" of the paper), then divided by N. The score is the mean over
    classes. Features are used as given (no centring or scaling), as in the paper.

    One difference from the reference code: when ``D > N`` (more dimensions than samples)
    the log-determinant counts ``log(alpha)`` once per *non-zero* singular value only, i.e.
    the directions the data cannot see are left out of both the prior and the determinant,
    which is the exact evidence; with ``N > D`` (the usual case) the two agree.

    Args:
        tol: stop when ``alpha / beta`` changes by less than this, relatively.
        max_iter: the most fixed-point iterations per class.
    """

    name = "logme"
    higher_is_better = True

    def __init__(self, tol: float = 1e-6, max_iter: int = 100) -> None:
        self.tol = tol
        self.max_iter = max_iter

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        n = features.shape[0]
        targets = (codes[:, None] == np.arange(int(codes.max()) + 1)[None, :]).astype(float)
        sigma, projected = _spectrum(features, targets)
        if sigma.size == 0:
            raise ScoreNotComputable("the features are all zero")
        # A one-hot target's squared norm is its class size.
        return float(np.mean(self._evidences(sigma, projected.T, np.bincount(codes), n)))

    def _evidences(
        self, sigma: np.ndarray, coordinates: np.ndarray, y_norm2: np.ndarray, n: int
    ) -> np.ndarray:
        """Maximum log evidence per sample of each target, all targets at once.

        ``sigma`` are the non-zero eigenvalues of ``F^T F``; row k of ``coordinates`` holds
        target k's coordinates along the matching left singular vectors, and ``y_norm2[k]``
        its squared norm. The part of a target outside their span, ``y_norm2 - |x|^2``, is a
        residual that no weight vector can explain. Each target runs its own fixed-point
        iteration; one that has converged is no longer updated.
        """
        x2 = coordinates**2
        outside = np.maximum(y_norm2 - x2.sum(axis=1), 0.0)
        alpha, beta = np.ones(len(x2)), np.ones(len(x2))
        active = np.arange(len(x2))
        for _ in range(self.max_iter):
            t = alpha[active] / beta[active]
            gamma, m2, res2 = _statistics(sigma, x2[active], outside[active], t)
            alpha[active] = gamma / (m2 + _EPSILON)
            beta[active] = (n - gamma) / (res2 + _EPSILON)
            active = active[np.abs(alpha[active] / beta[active] - t) > self.tol * t]
            if active.size == 0:
                break
        else:
            logger.debug("LogME did not converge in %d iterations", self.max_iter)
        # The residual and weight norm at the final (alpha, beta), not the previous ones.
        _, m2, res2 = _statistics(sigma, x2, outside, alpha / beta)
        evidence = (
            0.5 * sigma.size * np.log(alpha)
            + 0.5 * n * np.log(beta)
            - 0.5 * np.sum(np.log(alpha[:, None] + beta[:, None] * sigma), axis=1)
            - 0.5 * beta * res2
            - 0.5 * alpha * m2
            - 0.5 * n * np.log(2.0 * np.pi)
        )
        return evidence / n


def _spectrum(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero eigenvalues of ``F^T F`` and the targets' coordinates on ``U`` (``F = U S V^T``).

    With more samples than dimensions the D x D Gram matrix is cheaper to decompose than F;
    eigenvalues below ``10 * D * eps`` of the largest count as zero (rank deficiency).
    """
    n, d = features.shape
    if n > d:
        sigma, v = np.linalg.eigh(features.T @ features)
        keep = sigma > sigma.max() * d * np.finfo(float).eps * 10
        sigma, v = sigma[keep], v[:, keep]
        # U^T y = S^-1 V^T F^T y
        projected = (v.T @ (features.T @ targets)) / np.sqrt(sigma)[:, None]
        return sigma, projected
    u, s = wide_svd(features)
    keep = s > s.max() * max(n, d) * np.finfo(float).eps
    return s[keep] ** 2, u[:, keep].T @ targets


def _statistics(
    sigma: np.ndarray, x2: np.ndarray, outside: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effective parameter count, ``|m|^2`` and ``|F m - y|^2`` of each target's posterior.

    One row of ``x2`` (squared coordinates), one entry of ``outside`` and of ``t`` (its
    ``alpha / beta``) per target.
    """
    shrink = sigma + t[:, None]
    gamma = np.sum(sigma / shrink, axis=1)
    m2 = np.sum(sigma * x2 / shrink**2, axis=1)
    res2 = np.sum(x2 * (t[:, None] / shrink) ** 2, axis=1) + outside
    return gamma, m2, res2
