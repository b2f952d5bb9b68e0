"""One point of the non-binary space: :class:`TrialSettings`, and the rules that tie it to a model.

A model has L layers (timm's fine-grained groups, stem = 1, head = L). The settings that count
layers are bounded by it: k (``reinit_layers``) <= L - 1, so that at least the stem stays
transferred; n (``low_layers``) and m (``l2sp_layers``) <= L - k, the transferred layers.
:meth:`TrialSettings.fit_to` is the one place that applies those bounds: every path that
checks, samples, caps or enumerates settings for a model goes through it (or through
:func:`layer_limits`, which it uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from nonbinary_ft.config.base import FrozenModel, NonNegativeFloat, PositiveFloat, invalid
from nonbinary_ft.errors import ConfigError

__all__ = [
    "SETTING_NAMES",
    "LAYER_SETTINGS",
    "LayerLimits",
    "layer_limits",
    "canonical_settings",
    "same_settings",
    "settings_key",
    "is_binary",
    "TrialSettings",
]

# The order settings are shown in: the paper's (re-init, LRs, low layers, L2-SP).
SETTING_NAMES = (
    "reinit_layers",
    "lr_high",
    "lr_new",
    "low_layers",
    "lr_low",
    "l2sp_layers",
    "alpha",
    "beta",
)
# The settings that count layers, bounded by the model's layer count.
LAYER_SETTINGS = ("reinit_layers", "low_layers", "l2sp_layers")


def canonical_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with the values that change nothing dropped, so that equal runs compare equal.

    ``lr_new`` unset is ``lr_high``; ``lr_low`` is unused without low layers and ``alpha``
    without L2-SP layers.
    """
    known = {name: settings.get(name) for name in SETTING_NAMES}
    if known.get("lr_new") is None:
        known["lr_new"] = known.get("lr_high")
    if not known.get("low_layers"):
        known["low_layers"], known["lr_low"] = 0, None
    if not known.get("l2sp_layers"):
        known["l2sp_layers"], known["alpha"] = 0, None
    return {name: (float(v) if isinstance(v, float) else v) for name, v in known.items()}


def is_binary(settings: Mapping[str, Any]) -> bool:
    """Whether settings are binary fine-tuning: head-only re-initialisation, one learning
    rate (no lower-layer or new-layer rate of their own) and plain L2 (no L2-SP layers)."""
    lr_new = settings.get("lr_new")
    return (
        settings.get("reinit_layers", 1) == 1
        and not settings.get("low_layers")
        and settings.get("l2sp_layers", 0) == 0
        and (lr_new is None or lr_new == settings.get("lr_high"))
    )


def same_settings(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two trials' settings train the same way (``lr_new=None`` is ``lr_high``, ...)."""
    return canonical_settings(first) == canonical_settings(second)


def settings_key(settings: Mapping[str, Any]) -> str:
    """A hashable key, equal for settings that train the same way (:func:`same_settings`)."""
    return repr(sorted(canonical_settings(settings).items()))


@dataclass(frozen=True)
class LayerLimits:
    """The largest valid layer counts for a model of ``num_layers`` layers and a given k.

    Attributes:
        num_layers: the model's layer count L.
        max_reinit: the largest k (L - 1).
        transferred: L - k, the largest n and m for this k.
    """

    num_layers: int
    max_reinit: int
    transferred: int

    def cap(self, name: str) -> int:
        """The largest value of the layer setting ``name`` (one of :data:`LAYER_SETTINGS`)."""
        return self.max_reinit if name == "reinit_layers" else self.transferred


def layer_limits(num_layers: int, reinit_layers: int) -> LayerLimits:
    """The bounds of k, n and m for a model of ``num_layers`` layers when ``reinit_layers`` = k."""
    return LayerLimits(num_layers, num_layers - 1, num_layers - reinit_layers)


class TrialSettings(FrozenModel):
    """One point of the non-binary space: the binary default unless set."""

    reinit_layers: int = Field(
        1,
        ge=1,
        description="Top k layers re-initialised with the architecture's own init (1 = head only).",
    )
    lr_high: PositiveFloat = Field(
        0.01, description="Learning rate of the transferred layers above the low/high split."
    )
    lr_new: PositiveFloat | None = Field(
        None, description="Learning rate of the re-initialised layers; default: lr_high."
    )
    low_layers: int = Field(0, ge=0, description="The lowest n transferred layers train at lr_low.")
    lr_low: PositiveFloat | None = Field(
        None, description="Learning rate of the low layers; needed when low_layers > 0."
    )
    l2sp_layers: int | Literal["all"] = Field(
        0,
        description="The lowest m transferred layers decay towards their pre-trained "
        "values (L2-SP); 'all' for every transferred layer, 0 for plain L2.",
    )
    alpha: NonNegativeFloat = Field(0.01, description="L2-SP strength.")
    beta: NonNegativeFloat = Field(
        1e-4, description="L2 strength (towards 0) of every other regularised weight."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrialSettings:
        if self.low_layers > 0 and self.lr_low is None:
            raise invalid("lr_low", "set when low_layers > 0")
        if isinstance(self.l2sp_layers, int) and self.l2sp_layers < 0:
            raise invalid("l2sp_layers", ">= 0 or 'all'")
        return self

    @property
    def effective_lr_new(self) -> float:
        """The LR of the re-initialised layers (``lr_high`` unless set)."""
        return self.lr_new if self.lr_new is not None else self.lr_high

    def num_l2sp_layers(self, num_layers: int) -> int:
        """How many transferred layers L2-SP covers for a model of ``num_layers`` layers."""
        transferred = num_layers - self.reinit_layers
        return transferred if self.l2sp_layers == "all" else self.l2sp_layers

    def fit_to(
        self, num_layers: int, *, clamp: bool = False, model_name: str = "the model"
    ) -> TrialSettings:
        """These settings for a model of ``num_layers`` layers (k <= L-1; n, m <= L-k).

        Args:
            num_layers: the model's layer count L.
            clamp: bring k, n and m into range instead of refusing them (a sampler's draw
                whose n or m range did not know k yet).
            model_name: shown in errors.

        Returns:
            ``self`` when already in range, else (with ``clamp``) a clamped copy.

        Raises:
            ConfigError: without ``clamp``, a layer count out of range, naming the setting,
                its bound and the value given.
        """
        if clamp:
            k = min(max(self.reinit_layers, 1), num_layers - 1)
            limits = layer_limits(num_layers, k)
            update: dict[str, int] = {
                "reinit_layers": k,
                "low_layers": min(self.low_layers, limits.transferred),
            }
            if self.l2sp_layers != "all":
                update["l2sp_layers"] = min(self.l2sp_layers, limits.transferred)
            fitted = self.model_copy(update=update)
            return fitted if fitted != self else self
        limits = layer_limits(num_layers, self.reinit_layers)
        size = f"{model_name} has {num_layers} layers"
        if self.reinit_layers > limits.max_reinit:
            raise ConfigError(
                "settings.reinit_layers",
                f"between 1 and {limits.max_reinit} ({size}; at least the stem must stay "
                "transferred)",
                self.reinit_layers,
            )
        transferred = (
            f"at most {limits.transferred}, the number of transferred layers of {model_name} "
            f"with reinit_layers={self.reinit_layers}"
        )
        if self.low_layers > limits.transferred:
            raise ConfigError("settings.low_layers", transferred, self.low_layers)
        if self.l2sp_layers != "all" and self.l2sp_layers > limits.transferred:
            raise ConfigError("settings.l2sp_layers", f"{transferred}, or 'all'", self.l2sp_layers)
        return self
