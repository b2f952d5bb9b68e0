"""The grids of search 'grid' (the paper's figures), enumerated: every valid, distinct point.

A grid combination that breaks a layer constraint for the model (n or m above L - k) or
repeats an earlier point is dropped, and counted, rather than trained.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from typing import Any

from nonbinary_ft.config.base import validate_model
from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.config.space import Fixed, Grid, SearchSpace
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.search.sampling import SpaceSource

__all__ = ["MAX_GRID_POINTS", "grid_points"]

logger = logging.getLogger(__name__)

MAX_GRID_POINTS = 100_000
"""More combinations than any sweep trains; enumerating them would only fill the memory."""


def _check_grid_size(where: SpaceSource, space: SearchSpace) -> None:
    """Refuse a grid too large to enumerate, with its size."""
    if space.grid_size() > MAX_GRID_POINTS:
        raise ConfigError(
            where.field("").removesuffix("."),
            f"grids of at most {MAX_GRID_POINTS:,} combinations (each one is a trial)",
            f"{space.grid_size():,} combinations",
            source=where.source,
        )


def grid_points(
    spaces: Iterable[tuple[SpaceSource, SearchSpace]], num_layers: int, base: TrialSettings
) -> tuple[list[dict[str, Any]], int]:
    """Every valid, distinct point of the spaces' grids, in order (space after space).

    Args:
        spaces: (where it came from, the capped space) pairs.
        num_layers: the model's layer count L.
        base: the settings the spaces leave out.

    Returns:
        The full settings of each point, and how many combinations were dropped because they
        break a constraint (n or m above L - k) or repeat an earlier point.

    Raises:
        ConfigError: a parameter that is not a grid or fixed value, or no valid point at all.
    """
    points: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    dropped = 0
    for where, space in spaces:
        _check_grid_size(where, space)
        names, axes = [], []
        for name, distribution in space.parameters.items():
            if isinstance(distribution, Grid):
                names.append(name)
                axes.append(list(distribution.values))
            elif isinstance(distribution, Fixed):
                names.append(name)
                axes.append([distribution.value])
            else:
                raise ConfigError(
                    where.field(name),
                    "a 'grid' or 'fixed' distribution with search.algorithm 'grid'",
                    distribution.type,
                    source=where.source,
                )
        for combination in itertools.product(*axes):
            merged = {**base.model_dump(), **dict(zip(names, combination, strict=True))}
            try:
                settings = validate_model(TrialSettings, merged).fit_to(num_layers)
            except ConfigError:
                dropped += 1
                continue
            point = settings.model_dump()
            key = tuple(sorted((k, repr(v)) for k, v in point.items()))
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            points.append(point)
    if not points:
        raise ConfigError(
            "sweep.space",
            f"grids with at least one combination valid for a model of {num_layers} layers",
            f"{dropped} combinations, none valid",
        )
    if dropped:
        logger.info("grid: %d combinations dropped (out of range or repeated)", dropped)
    return points, dropped
