"""NCE (Tran et al., 2019): negative conditional entropy of target given source labels."""

from __future__ import annotations

import numpy as np

from nonbinary_ft.analysis.scores.base import (
    SourceContext,
    TransferabilityScore,
    check_source_probs,
)
from nonbinary_ft.analysis.scores.registry import register

__all__ = ["NCE"]


@register
class NCE(TransferabilityScore):
    """NCE ``= -H(Y | Z)``, with ``Z`` the source head's predicted class (argmax).

    From the empirical joint ``P(y, z)`` of target label and predicted source class over the
    N target images (natural logarithm):
    ``NCE = sum_{y, z} P(y, z) * log( P(y, z) / P(z) )``.

    At most 0 (0 when the source prediction determines the target label); larger predicts
    better transfer. Needs ``source_probs``; ties in the argmax go to the first class.
    """

    name = "nce"
    higher_is_better = True
    requires = frozenset({"source_probs"})

    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        theta = check_source_probs(context.source_probs, codes.size)
        predicted = np.argmax(theta, axis=1)
        joint = np.zeros((int(codes.max()) + 1, theta.shape[1]))
        np.add.at(joint, (codes, predicted), 1.0)
        joint /= codes.size
        marginal = np.broadcast_to(joint.sum(axis=0), joint.shape)
        seen = joint > 0
        return float(np.sum(joint[seen] * np.log(joint[seen] / marginal[seen])))
