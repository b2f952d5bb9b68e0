"""From a search-space file to valid trial settings for one model.

A space (:mod:`nonbinary_ft.config.space`) does not know the model; the constraints between the
layer settings do (k <= L-1; n, m <= L-k; ``lr_low`` needed when n > 0), and
:meth:`TrialSettings.fit_to` applies them. This module makes every config valid *before* a
trial starts:

- :func:`constrain_space` caps the layer ranges to what the model allows, and rejects a range
  that no valid value is left in (an "impossible range") with the parameter's path;
- :class:`ConstrainedSpace` is an Optuna define-by-run space that samples k first, then n and
  m within ``L - k``; every config it returns passes ``TrialSettings.fit_to(L)``;
  :meth:`ConstrainedSpace.combinations` lists what it can sample, when that is finite.

The grids of search 'grid' are enumerated by :mod:`.grid`.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nonbinary_ft.config.base import validate_model
from nonbinary_ft.config.experiment import ExperimentConfig
from nonbinary_ft.config.settings import LAYER_SETTINGS, TrialSettings, layer_limits
from nonbinary_ft.config.space import (
    Choice,
    Distribution,
    Fixed,
    FloatRange,
    Grid,
    IntRange,
    SearchSpace,
    load_space,
    parse_space,
)
from nonbinary_ft.errors import ConfigError

__all__ = [
    "SpaceSource",
    "ConstrainedSpace",
    "load_sweep_spaces",
    "constrain_space",
    "make_valid",
]

logger = logging.getLogger(__name__)

MAX_ENUMERATED = 5_000
"""The most combinations a sampled space is enumerated for (to draw an untried one when the
sampler repeats itself); a larger space rarely repeats, and each one costs a validation."""


@dataclass(frozen=True)
class SpaceSource:
    """A search space and where it came from (for error messages).

    Attributes:
        space: the parsed space.
        source: the file it was read from (the space file, or the sweep file if inline).
        prefix: the field path of the space inside ``source`` ('' for a space file).
    """

    space: SearchSpace
    source: str | None
    prefix: str

    def field(self, name: str) -> str:
        """The dotted path of a parameter, as the user wrote it."""
        return ".".join(part for part in (self.prefix, "parameters", name) if part)


def load_sweep_spaces(config: ExperimentConfig, source: str | Path | None) -> list[SpaceSource]:
    """Read the sweep's space(s): a path, an inline mapping, or a list of them.

    Relative paths are looked up next to the sweep file first, then in the working directory.

    Raises:
        ConfigError: no space given, a file that does not exist, or an invalid space.
    """
    raw = config.sweep.space
    where = str(source) if source is not None else None
    if raw is None:
        raise ConfigError(
            "sweep.space",
            "a search space: a path such as search_spaces/paper_full.yaml, or an inline "
            "mapping with 'name' and 'parameters'",
            source=where,
        )
    items = raw if isinstance(raw, list) else [raw]
    spaces = []
    for index, item in enumerate(items):
        prefix = "sweep.space" + (f".{index}" if isinstance(raw, list) else "")
        if isinstance(item, str):
            path = _find_space_file(item, source, prefix)
            spaces.append(SpaceSource(load_space(path), str(path), ""))
        else:
            spaces.append(SpaceSource(parse_space(item, where, prefix), where, prefix))
    return spaces


def _find_space_file(name: str, source: str | Path | None, field: str) -> Path:
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else []
    if not path.is_absolute():
        if source is not None:
            candidates.append(Path(source).resolve().parent / path)
        candidates.append(Path.cwd() / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(c) for c in candidates)
    raise ConfigError(
        field, f"an existing search-space file (looked for {looked})", name, source=source
    )


def _check_value(name: str, value: Any, where: SpaceSource) -> None:
    """Validate one value of a distribution against the setting's own constraints."""
    probe: dict[str, Any] = {name: value}
    if name == "low_layers":
        probe["lr_low"] = 1.0  # the lr_low rule is checked for the space as a whole
    prefix = ".".join(part for part in (where.prefix, "parameters") if part)
    validate_model(TrialSettings, probe, where.source, prefix)


def _representatives(distribution: Distribution) -> list[Any]:
    if isinstance(distribution, FloatRange | IntRange):
        return [distribution.low, distribution.high]
    if isinstance(distribution, Choice | Grid):
        return list(distribution.values)
    return [distribution.value]


def _int_values(distribution: Distribution | None, default: Any) -> list[int]:
    """The integer values a layer setting can take (ranges: their bounds)."""
    if distribution is None:
        values: Iterable[Any] = [default]
    elif isinstance(distribution, IntRange):
        values = [distribution.low, distribution.high]
    else:
        values = _representatives(distribution)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _cap(distribution: Distribution, cap: int, where: SpaceSource, name: str, why: str):
    """Cap an integer distribution at ``cap``; error when no value is left."""

    def impossible(got: Any) -> ConfigError:
        return ConfigError(where.field(name), f"at most {cap} ({why})", got, source=where.source)

    if isinstance(distribution, IntRange):
        if distribution.low > cap:
            raise impossible(f"low {distribution.low}")
        return distribution.model_copy(update={"high": min(distribution.high, cap)})
    if isinstance(distribution, Choice | Grid):
        kept = [v for v in distribution.values if not isinstance(v, int) or v <= cap]
        if not kept:
            raise impossible(list(distribution.values))
        return distribution.model_copy(update={"values": kept})
    value = distribution.value if isinstance(distribution, Fixed) else None
    if isinstance(value, int) and value > cap:
        raise impossible(value)
    return distribution


def _check_types(where: SpaceSource, params: dict[str, Distribution]) -> None:
    """Every value a distribution can give is of its setting's type and within its bounds;
    a layer count is never a float range."""
    for name, distribution in params.items():
        if name in LAYER_SETTINGS and isinstance(distribution, FloatRange):
            raise ConfigError(
                where.field(name),
                "an int range, a choice, a grid or a fixed value (it counts layers)",
                "a float range",
                source=where.source,
            )
        for value in _representatives(distribution):
            _check_value(name, value, where)


def _check_room(
    where: SpaceSource,
    params: dict[str, Distribution],
    smallest: dict[str, int],
    num_layers: int,
    size: str,
) -> None:
    """Even the head alone (k = 1) leaves only L - 1 layers for n and m: a smallest n or m
    beyond that is the fault of n or m (in the space, else the file's settings), not of k."""
    for name, value in smallest.items():
        if value > num_layers - 1:
            in_space = name in params
            raise ConfigError(
                where.field(name) if in_space else f"settings.{name}",
                f"at most {num_layers - 1} ({size}; n, m <= L-k with k >= 1)",
                f"low {value}" if isinstance(params.get(name), IntRange) else value,
                source=where.source if in_space else None,
            )


def constrain_space(
    where: SpaceSource, num_layers: int, base: TrialSettings, model_name: str = "the model"
) -> SearchSpace:
    """Validate a space against the setting types and cap its layer ranges to the model.

    Args:
        where: the space and where it came from.
        num_layers: the model's layer count L.
        base: the sweep file's settings, which fill the settings the space leaves out.
        model_name: shown in errors.

    Returns:
        The same space with k capped at its largest valid value and n, m at L - (smallest k).

    Raises:
        ConfigError: a value of the wrong type or out of the setting's bounds, a float range on
            a layer count, a range with no valid value for this model, or low_layers able to
            exceed 0 with no lr_low anywhere.
    """
    params = dict(where.space.parameters)
    _check_types(where, params)

    size = f"{model_name} has {num_layers} layers"
    n_min = min(_int_values(params.get("low_layers"), base.low_layers), default=0)
    m_min = min(_int_values(params.get("l2sp_layers"), base.l2sp_layers), default=0)
    _check_room(where, params, {"low_layers": n_min, "l2sp_layers": m_min}, num_layers, size)
    # The largest k that leaves room for the smallest n and m: L - k >= max(n_min, m_min).
    k_cap = min(layer_limits(num_layers, 1).max_reinit, num_layers - max(n_min, m_min))
    k_why = f"{size}; k <= L-1, and n, m <= L-k with n >= {n_min}, m >= {m_min}"
    if "reinit_layers" in params:
        params["reinit_layers"] = _cap(
            params["reinit_layers"], k_cap, where, "reinit_layers", k_why
        )
    elif base.reinit_layers > k_cap:
        raise ConfigError(
            "settings.reinit_layers", f"at most {k_cap} ({k_why})", base.reinit_layers
        )
    k_min = min(_int_values(params.get("reinit_layers"), base.reinit_layers))
    widest = layer_limits(num_layers, k_min)
    for name in ("low_layers", "l2sp_layers"):
        if name in params:
            why = f"{size}; at most L - k with k >= {k_min}"
            params[name] = _cap(params[name], widest.cap(name), where, name, why)

    n_max = max(_int_values(params.get("low_layers"), base.low_layers), default=0)
    if n_max > 0 and "lr_low" not in params and base.lr_low is None:
        raise ConfigError(
            where.field("lr_low"),
            "a distribution (or settings.lr_low), because low_layers can be above 0",
            source=where.source,
        )
    return where.space.model_copy(update={"parameters": params})


def make_valid(settings: dict[str, Any], num_layers: int, base: TrialSettings) -> dict[str, Any]:
    """Complete a sampled config with the base settings and clamp k, n and m into range.

    Returns:
        The full settings (every TrialSettings field), valid for the model.

    Raises:
        ConfigError: the config cannot be made valid (an lr_low is missing).
    """
    merged = validate_model(TrialSettings, {**base.model_dump(), **settings}, "sampled settings")
    return merged.fit_to(num_layers, clamp=True).model_dump()


class ConstrainedSpace:
    """An Optuna define-by-run space over one (capped) search space, valid by construction.

    Args:
        space: a space returned by :func:`constrain_space`.
        num_layers: the model's layer count L.
        base: the settings the space leaves out.

    Raises:
        ValueError: the space holds a grid (the sweep plan rejects those with a ConfigError
            first: only search 'grid' enumerates grids).
    """

    def __init__(self, space: SearchSpace, num_layers: int, base: TrialSettings) -> None:
        grids = [n for n, d in space.parameters.items() if isinstance(d, Grid)]
        if grids:
            raise ValueError(f"grids {grids} cannot be sampled; use search 'grid'")
        self.space = space
        self.num_layers = num_layers
        self.base = base

    def __call__(self, trial: Any) -> dict[str, Any]:
        """Sample one config on an ``optuna.Trial`` (k first, then n and m within L - k)."""
        params = self.space.parameters
        # Ray's Optuna searcher hands a proxy whose every ``suggest_*`` lookup re-inspects the
        # method's signature (a fifth of a replay's time): each method is looked up once.
        method = functools.cache(lambda kind: getattr(trial, f"suggest_{kind}"))
        sampled: dict[str, Any] = {}
        k = self.base.reinit_layers
        if "reinit_layers" in params:
            cap = layer_limits(self.num_layers, k).max_reinit
            k = self._suggest(method, "reinit_layers", params["reinit_layers"], cap)
            sampled["reinit_layers"] = k
        limits = layer_limits(self.num_layers, k)
        for name, distribution in params.items():
            if name == "reinit_layers":
                continue
            cap = limits.cap(name) if name in LAYER_SETTINGS else None
            sampled[name] = self._suggest(method, name, distribution, cap)
        return make_valid(sampled, self.num_layers, self.base)

    @staticmethod
    def _suggest(
        method: Callable[[str], Callable[..., Any]],
        name: str,
        distribution: Distribution,
        cap: int | None,
    ) -> Any:
        if isinstance(distribution, FloatRange):
            return method("float")(name, distribution.low, distribution.high, log=distribution.log)
        if isinstance(distribution, IntRange):
            high = _int_high(distribution, cap)
            return method("int")(name, distribution.low, high, step=distribution.step)
        if isinstance(distribution, Choice):
            # Optuna needs the same choices in every trial, so a value above the cap is
            # clamped afterwards (to L - k, which is what 'all' means for m).
            value = method("categorical")(name, list(distribution.values))
            if cap is not None and isinstance(value, int) and value > cap:
                value = cap
            return value
        if isinstance(distribution, Fixed):
            return distribution.value
        raise TypeError(f"cannot sample {type(distribution).__name__}")  # pragma: no cover

    def combinations(self, limit: int = MAX_ENUMERATED) -> list[dict[str, Any]] | None:
        """Every config this space can sample, each as the values a sampler proposes for it
        (``raw``, what Optuna enqueues) and the valid settings they make (``settings``); None
        when the space has a float range or more than ``limit`` combinations."""
        params = self.space.parameters
        if any(isinstance(distribution, FloatRange) for distribution in params.values()):
            return None
        sampled = [name for name, d in params.items() if not isinstance(d, Fixed)]
        if "reinit_layers" in sampled:
            cap = layer_limits(self.num_layers, self.base.reinit_layers).max_reinit
            reinit_values = _values(params["reinit_layers"], cap)
        else:
            reinit_values = [None]
        combinations: list[dict[str, Any]] = []
        for k in reinit_values:
            limits = layer_limits(self.num_layers, self.base.reinit_layers if k is None else k)
            names = [name for name in sampled if name != "reinit_layers"]
            axes = [
                _values(params[name], limits.cap(name) if name in LAYER_SETTINGS else None)
                for name in names
            ]
            for values in itertools.product(*axes):
                raw = dict(zip(names, values, strict=True))
                if k is not None:
                    raw["reinit_layers"] = k
                combinations.append(raw)
                if len(combinations) > limit:
                    return None
        from optuna.trial import FixedTrial  # Optuna is only needed once something samples

        # FixedTrial answers each suggest_* with the given value: the same path as a sampled
        # config, clamping included.
        return [{"raw": raw, "settings": self(FixedTrial(raw))} for raw in combinations]


def _int_high(distribution: IntRange, cap: int | None) -> int:
    """The range's top under the layer cap, snapped down onto its step grid (as Optuna
    wants; n's cap moves with k)."""
    high = distribution.high if cap is None else min(distribution.high, cap)
    return distribution.low + (high - distribution.low) // distribution.step * distribution.step


def _values(distribution: Distribution, cap: int | None) -> list[Any]:
    """What a sampler can propose for one integer or choice parameter."""
    if isinstance(distribution, IntRange):
        return list(range(distribution.low, _int_high(distribution, cap) + 1, distribution.step))
    if isinstance(distribution, Choice):
        return list(distribution.values)
    raise TypeError(f"cannot enumerate {type(distribution).__name__}")  # pragma: no cover
