"""Search spaces over the non-binary settings: the YAML format of ``search_spaces/``.

A space maps each trial setting (see :class:`nonbinary_ft.config.settings.TrialSettings`) to a
distribution: a float or int range (optionally log-scaled), a choice, a grid, or a fixed
value. Settings a space leaves out keep the sweep file's value. Example::

    name: paper_full
    description: The paper's full non-binary space.
    parameters:
      reinit_layers: {type: int, low: 1, high: 3}
      lr_high: {type: float, low: 0.0005, high: 0.05, log: true}
      l2sp_layers: {type: choice, values: [0, 5, 10, all]}
      alpha: {type: grid, values: [0.0001, 0.001, 0.01]}

The constraints between settings (k, n and m against the model's layer count) are not part
of the file: they depend on the model, and the sweep enforces them on every sampled config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from nonbinary_ft.config.base import FrozenModel, invalid, read_yaml, validate_model
from nonbinary_ft.config.settings import SETTING_NAMES

__all__ = [
    "FloatRange",
    "IntRange",
    "Choice",
    "Grid",
    "Fixed",
    "SearchSpace",
    "load_space",
    "dump_space",
]


class FloatRange(FrozenModel):
    """A continuous range, uniform or log-uniform."""

    type: Literal["float"] = "float"
    low: float = Field(description="Lower bound (inclusive).")
    high: float = Field(description="Upper bound (inclusive).")
    log: bool = Field(False, description="Sample on a log scale (learning rates, strengths).")

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise invalid("low", f"<= high ({self.high})", self.low)
        if self.log and self.low <= 0:
            raise invalid("low", "> 0 on a log scale", self.low)
        return self


class IntRange(FrozenModel):
    """An integer range (layer counts)."""

    type: Literal["int"] = "int"
    low: int = Field(description="Lower bound (inclusive).")
    high: int = Field(description="Upper bound (inclusive).")
    step: int = Field(1, ge=1, description="Step between values.")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise invalid("low", f"<= high ({self.high})", self.low)
        return self


class Choice(FrozenModel):
    """A categorical choice, sampled by the search algorithm."""

    type: Literal["choice"] = "choice"
    values: list[Any] = Field(min_length=1, description="The values to choose from.")


class Grid(FrozenModel):
    """Every value is tried (a Cartesian product with the other grids), as in the paper."""

    type: Literal["grid"] = "grid"
    values: list[Any] = Field(min_length=1, description="The values to try, each once.")


class Fixed(FrozenModel):
    """One value for every trial."""

    type: Literal["fixed"] = "fixed"
    value: Any = Field(description="The value.")


Distribution = Annotated[FloatRange | IntRange | Choice | Grid | Fixed, Field(discriminator="type")]


class SearchSpace(FrozenModel):
    """A named space over the trial settings."""

    name: str = Field(description="Name shown in reports and MLflow.")
    description: str = Field("", description="What the space is for and where it comes from.")
    parameters: dict[str, Distribution] = Field(
        min_length=1, description="Trial setting -> its distribution."
    )

    @model_validator(mode="after")
    def _known_settings(self) -> SearchSpace:
        for name in self.parameters:
            if name not in SETTING_NAMES:
                raise invalid(
                    f"parameters.{name}", f"a trial setting, one of {sorted(SETTING_NAMES)}"
                )
        return self

    def grid_size(self) -> int:
        """How many configs the grids span (1 when the space has none)."""
        size = 1
        for distribution in self.parameters.values():
            if isinstance(distribution, Grid):
                size *= len(distribution.values)
        return size


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space file.

    Raises:
        ConfigError: the file is missing, not YAML, or a distribution is invalid (naming the
            file and the parameter).
    """
    return parse_space(read_yaml(path, "search space"), path)


def parse_space(raw: Any, source: str | Path | None = None, prefix: str = "") -> SearchSpace:
    """Validate a space given as a mapping (inline in a sweep file, or loaded from YAML).

    Raises:
        ConfigError: as :func:`load_space`.
    """
    return validate_model(SearchSpace, raw, source, prefix)


def dump_space(space: SearchSpace) -> str:
    """The space as YAML in the format :func:`load_space` reads."""
    return yaml.safe_dump(space.model_dump(mode="json"), sort_keys=False)
