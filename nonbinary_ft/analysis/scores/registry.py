"""Registry of transferability scores by name, and :func:`compute_scores` over several.

Score modules register themselves with the :func:`register` decorator; importing
``nonbinary_ft.analysis.scores`` imports them all, so the registry is complete by the time
anyone can call :func:`list_scores`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from nonbinary_ft.analysis.scores.base import SourceContext, TransferabilityScore
from nonbinary_ft.errors import AnalysisError

__all__ = ["ScoreResult", "register", "get_score", "list_scores", "compute_scores"]

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, type[TransferabilityScore]] = {}

ScoreT = TypeVar("ScoreT", bound=type[TransferabilityScore])


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of one score: a value, or the reason there is none.

    Attributes:
        name: registry name of the score.
        value: the score, or ``None`` when it could not be computed.
        reason: why it could not be computed (``None`` when ``value`` is set).
        higher_is_better: whether a larger value predicts better transfer.
    """

    name: str
    value: float | None
    reason: str | None
    higher_is_better: bool

    @property
    def computed(self) -> bool:
        """Whether the score has a value."""
        return self.value is not None

    def __str__(self) -> str:
        if self.value is None:
            return f"not computed: {self.reason}"
        return f"{self.value:.4g}"


def register(cls: ScoreT) -> ScoreT:
    """Class decorator: add a score to the registry under ``cls.name``.

    Args:
        cls: a concrete :class:`TransferabilityScore` subclass with ``name`` set.

    Returns:
        ``cls`` unchanged.

    Raises:
        ValueError: if another class is already registered under that name.
    """
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"A score named {cls.name!r} is already registered ({existing.__qualname__}); "
            f"pick another name for {cls.__qualname__}."
        )
    _REGISTRY[cls.name] = cls
    return cls


def list_scores() -> list[str]:
    """Return the names of all registered scores, sorted."""
    return sorted(_REGISTRY)


def get_score(name: str) -> type[TransferabilityScore]:
    """Return the score class registered under ``name``.

    Args:
        name: a registry name, e.g. ``"fisher"``.

    Raises:
        AnalysisError: if no score has that name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = list_scores()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise AnalysisError(
            f"Unknown transferability score {name!r}. Known scores: {', '.join(known)}.{hint}"
        ) from None


def compute_scores(
    features: np.ndarray,
    labels: np.ndarray,
    context: SourceContext | None = None,
    names: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, ScoreResult]:
    """Compute several scores; one that cannot be computed gets a reason instead of a value.

    Args:
        features: ``(N, D)`` penultimate features of the target images.
        labels: ``(N,)`` integer target labels.
        context: source-side information some scores need.
        names: which scores, in order; all registered ones when ``None``.
        params: constructor parameters per score name, e.g. ``{"emd": {"gamma": 0.1}}``.

    Returns:
        ``{name: ScoreResult}`` in the order of ``names``.

    Raises:
        AnalysisError: if a name (in ``names`` or ``params``) is not a registered score;
            checked before anything is computed.
    """
    selected = list_scores() if names is None else list(names)
    params = dict(params or {})
    # Build every score first: a typo in a name or parameter should fail fast, not after
    # the slow scores ran.
    for name in params:
        get_score(name)
    scores = {name: _build(name, params.get(name, {})) for name in selected}
    results: dict[str, ScoreResult] = {}
    for name, score in scores.items():
        value: float | None = None
        reason: str | None = None
        try:
            value = score.fit(features, labels, context).score_
        except AnalysisError as error:
            reason = str(error)
            logger.info("score %s not computed: %s", name, reason)
        results[name] = ScoreResult(name, value, reason, score.higher_is_better)
    return results


def _build(name: str, kwargs: Mapping[str, Any]) -> TransferabilityScore:
    """Instantiate the score ``name`` with ``kwargs``, naming the valid parameters on error."""
    cls = get_score(name)
    try:
        return cls(**kwargs)
    except TypeError as error:
        valid = cls.param_names()
        raise AnalysisError(
            f"Invalid parameters {dict(kwargs)!r} for score {name!r} ({error}). "
            f"Valid parameters: {', '.join(valid) or 'none'}."
        ) from error
