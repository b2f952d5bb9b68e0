"""The transferability-score interface: an estimator that reads features and labels.

Every score follows the scikit-learn convention: the constructor only stores its
parameters, :meth:`TransferabilityScore.fit` validates the input, computes the score and
stores it in ``score_``, and returns ``self``. The checks every score needs (finite 2-D
features, integer labels of the same length, at least two classes, the source context a
score requires) live here, so each score module holds only its formula.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nonbinary_ft.errors import AnalysisError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "SourceContext",
    "TransferabilityScore",
    "ScoreNotComputable",
    "check_features",
    "check_labels",
    "check_source_probs",
]

# Why each piece of context is needed, in the words the report shows after "not computed:".
_CONTEXT_REASONS = {
    "source_probs": "needs the source head's softmax outputs on the target images (source_probs)",
    "source_features": "needs a sample of the source data set (analysis.source_sample)",
}


class ScoreNotComputable(AnalysisError):
    """The score is undefined for this input; the message is the reason.

    Reports show it as ``not computed: <reason>``.
    """


# eq=False: the fields are arrays, whose == is element-wise and would make == ambiguous.
@dataclass(frozen=True, eq=False)
class SourceContext:
    """What some scores need beyond the target features and labels (all optional).

    Attributes:
        source_probs: ``(N, Cs)`` softmax outputs of the *source* head on the N target
            images (LEEP; NCE uses their argmax).
        source_features: ``(M, D)`` penultimate features of a sample of *source* images (EMD).
        source_labels: ``(M,)`` the source labels of those images (EMD).
    """

    source_probs: np.ndarray | None = None
    source_features: np.ndarray | None = None
    source_labels: np.ndarray | None = None

    def has(self, requirement: str) -> bool:
        """Whether this context provides ``requirement`` (a key of ``requires``).

        Args:
            requirement: ``"source_probs"`` or ``"source_features"``; the latter also needs
                ``source_labels``.

        Raises:
            ValueError: if ``requirement`` is not a known kind of context.
        """
        if requirement == "source_probs":
            return self.source_probs is not None
        if requirement == "source_features":
            return self.source_features is not None and self.source_labels is not None
        raise ValueError(
            f"Unknown context requirement {requirement!r}; known: {sorted(_CONTEXT_REASONS)}."
        )


def check_features(features: Any, what: str = "features") -> np.ndarray:
    """Return ``features`` as a finite float64 array of shape ``(N, D)``.

    Args:
        features: array-like of shape ``(N, D)``, one row per image.
        what: the name used in error messages.

    Raises:
        AnalysisError: if it is not numeric, not 2-D, empty, or holds NaN or infinite values.
    """
    try:
        array = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AnalysisError(
            f"{what} must be a numeric array but could not be read: {error}"
        ) from error
    if array.ndim != 2:
        raise AnalysisError(
            f"{what} must be a 2-D array of shape (samples, dimensions) "
            f"but got shape {array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise AnalysisError(f"{what} must not be empty but got shape {array.shape}.")
    n_nan = int(np.isnan(array).sum())
    if n_nan:
        raise AnalysisError(f"{what} contain {n_nan} NaN values.")
    n_inf = int(np.isinf(array).sum())
    if n_inf:
        raise AnalysisError(f"{what} contain {n_inf} infinite values.")
    return array


def check_labels(labels: Any, n_samples: int, what: str = "labels") -> np.ndarray:
    """Return ``labels`` as a 1-D integer array of length ``n_samples``.

    Args:
        labels: array-like of integer class labels.
        n_samples: the number of feature rows the labels belong to.
        what: the name used in error messages.

    Raises:
        AnalysisError: if it is not 1-D, not integer, or of another length.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise AnalysisError(f"{what} must be a 1-D array but got shape {array.shape}.")
    # bool is an integer type for numpy, but True/False labels are almost always a mistake.
    if not np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        raise AnalysisError(f"{what} must be integers but got dtype {array.dtype}.")
    if array.shape[0] != n_samples:
        raise AnalysisError(
            f"{what} must have one entry per feature row: got {array.shape[0]} {what} "
            f"for {n_samples} feature rows."
        )
    return array


def check_source_probs(probs: Any, n_samples: int, atol: float = 1e-3) -> np.ndarray:
    """Return the source head's softmax outputs as an ``(N, Cs)`` float64 array.

    Args:
        probs: array-like of shape ``(N, Cs)``, one probability row per target image.
        n_samples: the number N of target images.
        atol: how far a row sum may be from 1 (outputs stored in float16 drift a little);
            rows are renormalised to sum to exactly 1.

    Raises:
        AnalysisError: if it is not finite and 2-D, has another number of rows, holds
            negative values or rows that do not sum to 1 (logits instead of probabilities).
    """
    array = check_features(probs, what="source_probs")
    if array.shape[0] != n_samples:
        raise AnalysisError(
            f"source_probs must have one row per target image: got {array.shape[0]} rows "
            f"for {n_samples} images."
        )
    if array.min() < 0.0:
        row = int(np.argmin(array.min(axis=1)))
        raise AnalysisError(
            f"source_probs contain negative values ({array[row].min():.4g} in row {row}); "
            "pass softmax probabilities, not logits."
        )
    sums = array.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise AnalysisError(
            f"source_probs rows must sum to 1 but {bad.size} do not (row {bad[0]} sums to "
            f"{sums[bad[0]]:.4g}); pass softmax probabilities, not logits."
        )
    return array / sums[:, None]


class TransferabilityScore(ABC):
    """Base of every transferability score: ``fit(features, labels)`` sets ``score_``.

    Subclasses set the class attributes and implement :meth:`_score`; they receive checked
    float64 features and labels re-coded to ``0 .. K-1`` (the original values are in
    ``classes_``, for messages).

    Attributes:
        name: registry key, e.g. ``"fisher"``.
        higher_is_better: whether a larger value predicts better transfer.
        requires: context the score cannot do without, a subset of
            ``{"source_probs", "source_features"}``.
        score_: the value, set by :meth:`fit`.
        classes_: the distinct target labels, sorted, set by :meth:`fit`.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    requires: ClassVar[frozenset[str]] = frozenset()

    score_: float
    classes_: np.ndarray

    def fit(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        context: SourceContext | None = None,
    ) -> Self:
        """Compute the score of ``features`` for the classification task ``labels``.

        Args:
            features: ``(N, D)`` penultimate features of the N target images.
            labels: ``(N,)`` integer target labels.
            context: source-side information some scores need (see ``requires``).

        Returns:
            ``self``, with ``score_`` set to a finite float.

        Raises:
            AnalysisError: if the input is malformed (NaN, wrong shapes, a single class).
            ScoreNotComputable: if the score is undefined for this input or needs context
                that was not given.
        """
        x = check_features(features)
        y = check_labels(labels, x.shape[0])
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise AnalysisError(
                f"labels must contain at least 2 classes but all {y.size} samples have "
                f"label {self.classes_[0]}."
            )
        context = context if context is not None else SourceContext()
        for requirement in sorted(self.requires):
            if not context.has(requirement):
                raise ScoreNotComputable(_CONTEXT_REASONS[requirement])
        value = float(self._score(x, codes.astype(np.intp), context))
        if not np.isfinite(value):
            raise ScoreNotComputable(f"the {self.name} score came out as {value}")
        self.score_ = value
        return self

    @abstractmethod
    def _score(self, features: np.ndarray, codes: np.ndarray, context: SourceContext) -> float:
        """Compute the value from checked features and labels coded ``0 .. K-1``."""

    @classmethod
    def param_names(cls) -> list[str]:
        """Return the names of the constructor parameters, in order."""
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return [p.name for p in parameters if p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters and their values (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"
