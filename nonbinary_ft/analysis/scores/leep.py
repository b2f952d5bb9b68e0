"""LEEP (Nguyen et al., 2020): log expected empirical prediction of the source head."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    SourceContext,
    TransferabilityScore,
    check_source_probs,
)
from nonbinary_ft.analysis.scores.registry import register

__all__ = ["LEEP"]


@register
class LEEP(TransferabilityScore):
    """LEEP: how well the source head's outputs, re-mapped to the target labels, predict them.

    With ``theta_i`` the source head's softmax on target image i (``context.source_probs``):

    - empirical joint ``P(y, z) = 1/N * sum_{i: y_i = y} theta_i[z]``;
    - conditional ``P(y | z) = P(y, z) / P(z)`` (source classes with ``P(z) = 0`` never
      contribute, as their ``theta_i[z]`` are all zero);
    - ``LEEP = 1/N * sum_i log( sum_z P(y_i | z) * theta_i[z] )``.

    At most 0; larger (closer to 0) predicts better transfer. Needs ``source_probs``.
    """

    name = "leep"
    higher_is_better = True
    requires = frozenset({"source_probs"})

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        theta = check_source_probs(context.source_probs, codes.size)
        n_classes = int(codes.max()) + 1
        one_hot = np.eye(n_classes)[codes]
        joint = one_hot.T @ theta / codes.size  # (K, Cs)
        marginal = joint.sum(axis=0)
        conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
        expected = np.sum(theta * conditional[codes], axis=1)
        return float(np.mean(np.log(expected)))
