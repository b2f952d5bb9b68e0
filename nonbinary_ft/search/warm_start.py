"""Warm starts from past sweeps: the winners of the sweeps whose evidence is nearest come first.

A finished sweep leaves a :class:`PastSweep`: its cheap evidence (the fixed-feature
accuracy and the Fisher score, both known minutes into stage 1) and its completed settings
ranked by validation accuracy. A new sweep, once its own cheap evidence is in, takes the
:data:`NEIGHBOURS` past sweeps nearest in that evidence and evaluates their best settings
first, in turns (the nearest's best, the second's best, the nearest's second, ...), before
its sampler takes over; the sampler learns from those trials like any other, so a region
the past sweeps missed is still reached. The replay benchmark measured the choice of
evidence, of two neighbours and of twelve points (``benchmarks/replay/results``).

Why not the regime's recommendation first: on every replayed task, table 7's recommended
settings ranked between 17th and 108th of 150 grid points, while the nearest past sweeps'
winners held the target within their first twelve.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from nonbinary_ft.config.settings import TrialSettings, settings_key
from nonbinary_ft.config.space import Choice, Fixed, FloatRange, Grid, IntRange, SearchSpace
from nonbinary_ft.search.sampling import make_valid

__all__ = [
    "NEIGHBOURS",
    "WARM_POINTS",
    "EVIDENCE_SCALE",
    "EvidenceVector",
    "PastSweep",
    "WarmPoint",
    "nearest_sweeps",
    "warm_start_points",
    "in_space",
    "fit_to_space",
    "FirstTrial",
    "first_trials",
    "checked_sweep",
]

logger = logging.getLogger(__name__)

NEIGHBOURS = 2
"""Past sweeps whose winners are interleaved (one neighbour alone missed on 1 task of 6)."""
WARM_POINTS = 12
"""Settings evaluated before the sampler takes over (8 missed the target on a Lite0 task)."""
EVIDENCE_SCALE = (0.3, 0.5)
"""What counts as far: 0.3 of fixed-feature accuracy, half a decade of Fisher score."""


@dataclass(frozen=True)
class EvidenceVector:
    """What stage 1 knows cheaply about how well the pre-trained weights fit.

    Attributes:
        fixed_feature_accuracy: the linear probe's validation accuracy on frozen features.
        fisher: the Fisher discriminant score of the features (> 0).
    """

    fixed_feature_accuracy: float
    fisher: float

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> EvidenceVector | None:
        """Read it from an analysis document: ``table1``, or its ``scores`` for the Fisher
        score (None when a part is missing)."""
        table1 = (document or {}).get("table1") or {}
        fisher_score = ((document or {}).get("scores") or {}).get("fisher") or {}
        accuracy = table1.get("fixed_feature_accuracy")
        fisher = table1.get("fisher", fisher_score.get("value"))
        if not isinstance(accuracy, int | float) or not isinstance(fisher, int | float):
            return None
        if not math.isfinite(accuracy) or not math.isfinite(fisher) or fisher <= 0:
            return None
        return cls(float(accuracy), float(fisher))

    def distance(self, other: EvidenceVector) -> float:
        """Euclidean distance in (accuracy, log10 Fisher), each divided by its scale."""
        accuracy = (self.fixed_feature_accuracy - other.fixed_feature_accuracy) / EVIDENCE_SCALE[0]
        fisher = (math.log10(self.fisher) - math.log10(other.fisher)) / EVIDENCE_SCALE[1]
        return math.hypot(accuracy, fisher)

    def to_dict(self) -> dict[str, float]:
        """As stored in the history (JSON)."""
        return {"fixed_feature_accuracy": self.fixed_feature_accuracy, "fisher": self.fisher}


@dataclass(frozen=True)
class PastSweep:
    """One finished sweep as the history keeps it.

    Attributes:
        name: the sweep's name (or the replay task's).
        evidence: its cheap evidence.
        ranked: its completed settings with their validation accuracy, best first.
        source: its identity where it was read from (an MLflow run id, a table folder).
        regime: the regime its analysis decided.
        gap: its gap (scratch - fixed), when the from-scratch run was made.
        origin: which history it came from ('prior', 'user store <file>', 'tracking
            server', 'table <folder>').
        model: the model it fine-tuned ('' when not recorded).
    """

    name: str
    evidence: EvidenceVector
    ranked: tuple[tuple[dict[str, Any], float], ...]
    source: str = ""
    regime: str = "unknown"
    gap: float | None = None
    origin: str = ""
    model: str = ""

    @property
    def winner(self) -> dict[str, Any] | None:
        """Its best settings."""
        return self.ranked[0][0] if self.ranked else None


def _checked_row(row: tuple[Any, Any]) -> tuple[dict[str, Any], float] | None:
    """A ranked row whose settings are valid trial settings and whose value is an accuracy;
    None otherwise."""
    settings, value = row
    if not isinstance(settings, Mapping) or isinstance(value, bool):
        return None
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        return None
    try:
        valid = TrialSettings.model_validate(dict(settings))
    except (ValidationError, TypeError, ValueError):
        return None
    return {name: getattr(valid, name) for name in settings}, float(value)


def checked_sweep(past: PastSweep) -> PastSweep | None:
    """``past`` with only the rows a sweep may run: valid trial settings (known names, values
    in range) with an accuracy in [0, 1]. A store is shared input: what it holds is checked
    before it is shown or run. One warning names the sweep when rows are dropped; None when
    none is left.
    """
    rows = [_checked_row(row) for row in past.ranked]
    kept = tuple(row for row in rows if row is not None)
    dropped = len(rows) - len(kept)
    if dropped:
        logger.warning(
            "history: %s (%s): %d of %d past settings skipped (not valid trial settings, or "
            "no accuracy in [0, 1])",
            past.name, past.source or "no source", dropped, len(rows),
        )  # fmt: skip
    if not kept:
        return None
    return replace(past, ranked=kept)


def nearest_sweeps(
    evidence: EvidenceVector, history: Sequence[PastSweep], count: int = NEIGHBOURS
) -> list[PastSweep]:
    """The ``count`` past sweeps nearest to ``evidence``, nearest first (ties by name)."""
    ordered = sorted(history, key=lambda past: (evidence.distance(past.evidence), past.name))
    return ordered[:count]


@dataclass(frozen=True)
class WarmPoint:
    """Settings to evaluate first, and why: which past sweep reached what with them.

    Attributes:
        settings: the settings (as the past sweep ran them; fit them to the new space).
        sweep: the past sweep's name.
        rank: their rank in it (1: its winner).
        val_accuracy: the validation accuracy they reached there.
        distance: how far that sweep's evidence is (None: no evidence to compare).
        other_model: the past sweep's model, when it is another model of the sweep's family
            (the sweep's own model had no past sweep); '' otherwise.
    """

    settings: dict[str, Any]
    sweep: str
    rank: int
    val_accuracy: float
    distance: float | None
    other_model: str = ""

    @property
    def reason(self) -> str:
        """One line for the decision log."""
        near = "" if self.distance is None else f", evidence {self.distance:.2f} away"
        model = f", {self.other_model}" if self.other_model else ""
        return f"#{self.rank} of past sweep {self.sweep} ({self.val_accuracy:.3f}{near}{model})"


def warm_start_points(
    evidence: EvidenceVector | None,
    history: Sequence[PastSweep],
    count: int = WARM_POINTS,
    neighbours: int = NEIGHBOURS,
) -> list[WarmPoint]:
    """The settings to evaluate first: the nearest sweeps' best, in turns, without repeats.

    Args:
        evidence: the new sweep's cheap evidence; None (the analysis failed or is off) takes
            the neighbours in the history's order.
        history: the past sweeps.
        count: how many settings at most.
        neighbours: how many past sweeps take turns.
    """
    chosen = (
        list(history[:neighbours])
        if evidence is None
        else nearest_sweeps(evidence, history, neighbours)
    )
    points: list[WarmPoint] = []
    seen: set[str] = set()
    depth = max((len(past.ranked) for past in chosen), default=0)
    for rank in range(depth):
        for past in chosen:
            if rank >= len(past.ranked) or len(points) >= count:
                continue
            settings, value = past.ranked[rank]
            key = settings_key(settings)
            if key in seen:
                continue
            seen.add(key)
            distance = None if evidence is None else evidence.distance(past.evidence)
            points.append(WarmPoint(dict(settings), past.name, rank + 1, value, distance))
    return points


def _nearest_value(values: Sequence[Any], wanted: Any) -> Any:
    """The option closest to ``wanted``: equal if present, else the nearest number in log
    scale for positive numbers, else the first option."""
    if wanted in values:
        return wanted
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not isinstance(wanted, int | float) or not numbers:
        return values[0]
    if wanted > 0 and all(v > 0 for v in numbers):
        return min(numbers, key=lambda v: abs(math.log(v) - math.log(wanted)))
    return min(numbers, key=lambda v: abs(v - wanted))


def _fit_value(distribution: Any, wanted: Any) -> Any:
    if isinstance(distribution, Fixed):
        return distribution.value
    if isinstance(distribution, Choice | Grid):
        return _nearest_value(list(distribution.values), wanted)
    if isinstance(distribution, FloatRange):
        if not isinstance(wanted, int | float):
            wanted = distribution.low
        return min(max(float(wanted), distribution.low), distribution.high)
    if isinstance(distribution, IntRange):
        if not isinstance(wanted, int):
            wanted = distribution.low
        value = min(max(wanted, distribution.low), distribution.high)
        steps = (value - distribution.low) // distribution.step
        return distribution.low + steps * distribution.step
    raise TypeError(f"cannot fit a value to {type(distribution).__name__}")


def in_space(settings: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """A past sweep's settings moved into this sweep's space: the nearest option, the range
    clipped; only the space's parameters are kept. These are values the space's sampler
    can itself propose (what is enqueued), before they are made valid for the model."""
    return {
        name: _fit_value(distribution, settings.get(name))
        for name, distribution in space.parameters.items()
    }


def fit_to_space(
    settings: Mapping[str, Any], space: SearchSpace, num_layers: int, base: TrialSettings
) -> dict[str, Any]:
    """:func:`in_space`, then made valid for this model, as a sampled point is (layer counts
    within L - k); only the space's parameters are kept."""
    valid = make_valid(in_space(settings, space), num_layers, base)
    return {name: valid[name] for name in space.parameters}


@dataclass(frozen=True)
class FirstTrial:
    """A warm start as a sweep runs it.

    Attributes:
        point: the past sweep's point it comes from.
        enqueued: its values in the space (what the sampler is given to propose first).
        settings: the whole trial settings it trains with (made valid for the model).
    """

    point: WarmPoint
    enqueued: dict[str, Any]
    settings: dict[str, Any]


def first_trials(
    points: Sequence[WarmPoint], space: SearchSpace, num_layers: int, base: TrialSettings
) -> list[FirstTrial]:
    """What a sweep runs first: the warm-start ``points`` fitted to its space and model,
    repeats after fitting dropped (settings that train the same way are one: L2-SP's alpha
    does not matter without L2-SP layers)."""
    settable = [n for n, d in space.parameters.items() if not isinstance(d, Fixed)]
    chosen: list[FirstTrial] = []
    seen: set[str] = set()
    for point in points:
        enqueued = in_space(point.settings, space)
        fitted = fit_to_space(point.settings, space, num_layers, base)
        settings = {**base.model_dump(), **fitted}
        key = settings_key(settings)
        if key in seen:
            continue
        seen.add(key)
        values = {name: enqueued[name] for name in settable}
        chosen.append(FirstTrial(point, values, settings))
    return chosen
