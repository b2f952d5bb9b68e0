"""Transferability scores: how well pre-trained features suit a target task.

Each score is an estimator: ``FisherScore().fit(features, labels).score_``. Scores are
registered by name (:func:`list_scores`, :func:`get_score`), and :func:`compute_scores`
runs several, reporting the ones that cannot be computed with a reason instead of a value.

Example::

    from nonbinary_ft.analysis.scores import compute_scores, SourceContext

    results = compute_scores(features, labels, SourceContext(source_probs=probs))
    for result in results.values():
        print(result.name, result)   # "fisher 1.35", "emd not computed: needs a sample ..."
"""

# Importing the score modules registers them, so the registry is complete on import.
from nonbinary_ft.analysis.scores.base import (
    ScoreNotComputable,
    SourceContext,
    TransferabilityScore,
)
from nonbinary_ft.analysis.scores.emd import EMDSimilarity
from nonbinary_ft.analysis.scores.fisher import FisherScore
from nonbinary_ft.analysis.scores.h_score import HScore
from nonbinary_ft.analysis.scores.intrinsic_dim import (
    IntrinsicDimension,
    twonn_dimension,
)
from nonbinary_ft.analysis.scores.leep import LEEP
from nonbinary_ft.analysis.scores.logme import LogME
from nonbinary_ft.analysis.scores.nce import NCE
from nonbinary_ft.analysis.scores.registry import (
    ScoreResult,
    compute_scores,
    get_score,
    list_scores,
    register,
)
from nonbinary_ft.analysis.scores.rsa import RSADelta
from nonbinary_ft.analysis.scores.sum_of_squares import SumOfSquares

__all__ = [
    # interface
    "TransferabilityScore",
    "SourceContext",
    "ScoreNotComputable",
    "ScoreResult",
    # registry
    "register",
    "get_score",
    "list_scores",
    "compute_scores",
    # scores
    "FisherScore",
    "EMDSimilarity",
    "LogME",
    "LEEP",
    "NCE",
    "HScore",
    "RSADelta",
    "SumOfSquares",
    "IntrinsicDimension",
    "twonn_dimension",
]
