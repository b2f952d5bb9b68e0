"""From a regime to concrete trial settings and a narrowed search space (the paper's table 7).

Values are relative to the sweep file's base learning rate (``settings.lr_high``) and the
model's layer count L, and each comes with its reason. The factors, from the paper's
Inception v4 results:

- ``WELL_LR_FACTOR = 0.1``: the best single LR of the well-fitting sets (Caltech 0.0025,
  DTD 0.002) is a tenth of the poorly-fitting ones' (Cars, Aircraft 0.025; table 2).
- ``WELL_REINIT_LAYERS = 2``: re-initialising two layers was best for Caltech and DTD
  (table 3); the third gained nothing.
- ``WELL_ALPHA = WELL_BETA = 0.01``: the best L2-SP strengths with L2-SP on all transferred
  layers (table 5, Caltech).
- ``POOR_LOW_FRACTION = 0.45``: 8 to 10 low layers of about 20 transferred (table 4, Cars
  and Aircraft).
- ``POOR_LR_LOW_RATIO = 0.4``: low layers at 0.01 under a high LR of 0.025 (tables 4, 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nonbinary_ft.analysis.regime import Regime
from nonbinary_ft.config import ExperimentConfig, TrialSettings
from nonbinary_ft.config.space import Choice, Fixed, FloatRange, IntRange, SearchSpace
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.vocabulary import RegimeLabel

__all__ = [
    "WELL_LR_FACTOR",
    "WELL_REINIT_LAYERS",
    "WELL_ALPHA",
    "WELL_BETA",
    "POOR_LOW_FRACTION",
    "POOR_LR_LOW_RATIO",
    "Recommendation",
    "recommend",
    "recommended_settings",
    "narrowed_space",
    "space_violations",
    "TABLE7_ROWS",
    "row_answers",
    "rows_against",
]

WELL_LR_FACTOR = 0.1
WELL_REINIT_LAYERS = 2
WELL_ALPHA = 0.01
WELL_BETA = 0.01
POOR_LOW_FRACTION = 0.45
POOR_LR_LOW_RATIO = 0.4
# Table 3 tried 1 to 3 re-initialised layers; more is outside the evidence.
MAX_REINIT_LAYERS = 3


@dataclass(frozen=True)
class Recommendation:
    """Concrete settings for a regime and the space to sweep around them.

    Attributes:
        regime: the regime label the recommendation is for.
        settings: ready-to-run trial settings (checked against the layer count).
        reasons: setting name -> why it has that value.
        space: the narrowed search space (contains ``settings``).
        space_reasons: parameter name -> why the space has that range.
        base_lr: the sweep file's ``settings.lr_high`` the LRs are relative to.
        num_layers: the model's layer count L.
    """

    regime: RegimeLabel
    settings: TrialSettings
    reasons: dict[str, str]
    space: SearchSpace
    space_reasons: dict[str, str] = field(default_factory=dict)
    base_lr: float = 0.01
    num_layers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "regime": self.regime,
            "settings": self.settings.model_dump(mode="json"),
            "reasons": dict(self.reasons),
            "space": self.space.model_dump(mode="json"),
            "space_reasons": dict(self.space_reasons),
            "base_lr": self.base_lr,
            "num_layers": self.num_layers,
        }


def _check_layers(num_layers: int) -> None:
    if num_layers < 2:
        raise ConfigError(
            "model.name",
            "a model with at least 2 layers (one transferred, the head re-initialised)",
            num_layers,
        )


def _poor_low_layers(transferred: int) -> int:
    # With a single transferred layer, "lower layers at a lower LR" is just a lower LR.
    if transferred < 2:
        return 0
    return min(transferred - 1, max(1, round(POOR_LOW_FRACTION * transferred)))


def _well_settings(base: TrialSettings, num_layers: int) -> tuple[dict[str, Any], dict[str, str]]:
    lr = base.lr_high
    k = min(WELL_REINIT_LAYERS, num_layers - 1)
    values: dict[str, Any] = {
        "reinit_layers": k,
        "lr_high": lr * WELL_LR_FACTOR,
        "low_layers": 0,
        "l2sp_layers": "all",
        "alpha": WELL_ALPHA,
        "beta": WELL_BETA,
    }
    reasons = {
        "lr_high": f"low: base {lr:g} x {WELL_LR_FACTOR:g}; the paper's well-fitting sets "
        "want an LR 10x below the poorly-fitting ones (table 2)",
        "reinit_layers": f"{k}: more than the head, as for Caltech and DTD (table 3)"
        + ("" if k == WELL_REINIT_LAYERS else f"; capped at L-1 = {num_layers - 1}"),
        "low_layers": "0: a lower LR for lower layers did not help well-fitting sets (table 4)",
        "l2sp_layers": "all: decay every transferred layer towards its pre-trained "
        "values (table 5, Caltech)",
        "alpha": f"{WELL_ALPHA:g}: the best L2-SP strength with L2-SP on all layers (table 5)",
        "beta": f"{WELL_BETA:g}: the matching L2 strength of the new layers (table 5)",
    }
    return values, reasons


def _poor_settings(base: TrialSettings, num_layers: int) -> tuple[dict[str, Any], dict[str, str]]:
    lr = base.lr_high
    n = _poor_low_layers(num_layers - 1)
    values = {
        "reinit_layers": 1,
        "lr_high": lr,
        "low_layers": n,
        "lr_low": lr * POOR_LR_LOW_RATIO if n else None,
        "l2sp_layers": 0,
        "alpha": base.alpha,
        "beta": base.beta,
    }
    reasons = {
        "lr_high": f"high: the base LR {lr:g}; poorly-fitting sets want the higher LR (table 2)",
        "reinit_layers": "1: head only; more did not help Cars or Aircraft (table 3)",
        "low_layers": f"{n} of {num_layers - 1} transferred layers "
        f"(~{POOR_LOW_FRACTION:.0%}, the paper's 8-10 of ~20) train at a lower LR "
        "(table 4)",
        "l2sp_layers": "0: plain L2; L2-SP hurt Cars and Aircraft (table 5)",
        "alpha": f"{base.alpha:g}: the sweep file's, unused (no layer is under L2-SP)",
        "beta": f"{base.beta:g}: the sweep file's L2 strength (the only regulariser left)",
    }
    if n:
        reasons["lr_low"] = (
            f"{POOR_LR_LOW_RATIO:g} x lr_high, as 0.01 under 0.025 for Cars (tables 4, 6)"
        )
    return values, reasons


def _default_settings(base: TrialSettings) -> tuple[dict[str, Any], dict[str, str]]:
    lr = base.lr_high
    values = {
        "reinit_layers": 1,
        "lr_high": lr,
        "low_layers": 0,
        "l2sp_layers": 0,
        "alpha": base.alpha,
        "beta": base.beta,
    }
    reasons = {
        name: "the binary default: the evidence does not decide the regime"
        for name in ("reinit_layers", "lr_high", "low_layers", "l2sp_layers")
    }
    reasons["alpha"] = f"{base.alpha:g}: the sweep file's, unused (no layer is under L2-SP)"
    reasons["beta"] = f"{base.beta:g}: the sweep file's L2 strength"
    return values, reasons


def recommended_settings(
    label: RegimeLabel, base: TrialSettings, num_layers: int
) -> tuple[TrialSettings, dict[str, str]]:
    """The table-7 settings for ``label``, relative to ``base`` and L, with reasons.

    Raises:
        ConfigError: a model with fewer than 2 layers.
    """
    _check_layers(num_layers)
    if label == RegimeLabel.FITS_WELL:
        values, reasons = _well_settings(base, num_layers)
    elif label == RegimeLabel.FITS_POORLY:
        values, reasons = _poor_settings(base, num_layers)
    else:
        values, reasons = _default_settings(base)
    return TrialSettings(**values).fit_to(num_layers), reasons


def _log_range(value: float, low: float, high: float) -> FloatRange:
    """A log-uniform range widened, if needed, to contain ``value``."""
    return FloatRange(low=min(low, value), high=max(high, value), log=True)


def _strength_range(value: float, low: float, high: float) -> FloatRange | Fixed:
    # A strength of 0 (regulariser off) cannot sit on a log scale: keep it fixed.
    return Fixed(value=value) if value <= 0 else _log_range(value, low, high)


def _int_range(low: int, high: int) -> IntRange | Fixed:
    return Fixed(value=low) if high <= low else IntRange(low=low, high=high)


def _choice(values: list[Any]) -> Choice | Fixed:
    unique = list(dict.fromkeys(values))
    return Fixed(value=unique[0]) if len(unique) == 1 else Choice(values=unique)


def _well_space(
    settings: TrialSettings, num_layers: int, k_max: int
) -> tuple[dict[str, Any], dict[str, str]]:
    lr = settings.lr_high
    partial = round(0.7 * (num_layers - k_max))
    l2sp = ["all"] + ([partial] if 1 <= partial < num_layers - k_max else [])
    params = {
        "lr_high": _log_range(lr, lr / 3, lr * 3),
        "reinit_layers": _int_range(settings.reinit_layers, k_max),
        "low_layers": Fixed(value=0),
        "l2sp_layers": _choice(l2sp),
        "alpha": _strength_range(settings.alpha, 0.001, 0.03),
        "beta": _strength_range(settings.beta, 0.001, 0.03),
    }
    reasons = {
        "lr_high": "3x either side of the low LR: Caltech's and DTD's optima span "
        "0.001-0.0025 (tables 2-4)",
        "reinit_layers": f"{settings.reinit_layers} to {k_max}: 2-3 layers helped "
        "well-fitting sets (table 3)",
        "low_layers": "fixed at 0: no gain from lower LRs for lower layers (table 4)",
        "l2sp_layers": "all, or about 70% of the transferred layers (DTD's best: 14 of "
        "~19, table 5)",
        "alpha": "0.001-0.03: the best L2-SP strengths were 0.001-0.01 (table 5)",
        "beta": "0.001-0.03: the best L2 strengths were 0.001-0.01 (table 5)",
    }
    return params, reasons


def _poor_space(settings: TrialSettings, num_layers: int) -> tuple[dict[str, Any], dict[str, str]]:
    lr, top = settings.lr_high, num_layers - 1
    params: dict[str, Any]
    n = settings.low_layers
    params = {
        "lr_high": _log_range(lr, lr / 2, lr * 2),
        "reinit_layers": Fixed(value=1),
        "l2sp_layers": Fixed(value=0),
        "beta": _strength_range(settings.beta, settings.beta / 10, settings.beta * 10),
    }
    reasons = {
        "lr_high": "2x either side of the high LR: Cars and Aircraft peaked at 0.025, "
        "0.015-0.02 with more layers re-initialised (tables 2, 3)",
        "reinit_layers": "fixed at 1: re-initialising more did not help (table 3)",
        "l2sp_layers": "fixed at 0: plain L2 beat L2-SP (table 5)",
        "beta": "10x either side of the L2 strength: the only regulariser left",
    }
    if n:
        low, high = max(1, round(0.3 * top)), min(top, max(n, round(0.6 * top)))
        params["low_layers"] = _int_range(min(low, n), high)
        params["lr_low"] = _log_range(settings.lr_low or lr, 0.2 * lr, 0.8 * lr)
        reasons["low_layers"] = "30-60% of the transferred layers (8-10 of ~20, table 4)"
        reasons["lr_low"] = "0.2-0.8x the high LR (0.01-0.015 under 0.025, table 4)"
    else:
        params["low_layers"] = Fixed(value=0)
        reasons["low_layers"] = "fixed at 0: one transferred layer has no lower layers"
    return params, reasons


def _open_space(
    settings: TrialSettings, num_layers: int, k_max: int
) -> tuple[dict[str, Any], dict[str, str]]:
    lr, top = settings.lr_high, num_layers - 1
    partial = round(0.5 * (num_layers - k_max))
    params = {
        "lr_high": _log_range(lr, lr / 20, lr * 2),
        "reinit_layers": _int_range(1, k_max),
        "low_layers": _int_range(0, min(round(0.6 * top), num_layers - k_max)),
        "lr_low": _log_range(lr * POOR_LR_LOW_RATIO, lr / 50, lr),
        "l2sp_layers": _choice([0, "all"] + ([partial] if partial >= 1 else [])),
        "alpha": _strength_range(settings.alpha, 1e-4, 0.1),
        "beta": _strength_range(settings.beta, 1e-4, 0.01),
    }
    reasons = {
        name: "the evidence does not decide the regime: both regimes' values stay open"
        for name in params
    }
    return params, reasons


def narrowed_space(
    label: RegimeLabel, settings: TrialSettings, num_layers: int
) -> tuple[SearchSpace, dict[str, str]]:
    """The search space around ``settings`` for ``label``, each parameter with its reason.

    Layer counts stay valid for every re-initialised count in the space (m, n <= L - k).

    Raises:
        ConfigError: a model with fewer than 2 layers.
    """
    _check_layers(num_layers)
    k_max = min(MAX_REINIT_LAYERS, num_layers - 1)
    if label == RegimeLabel.FITS_WELL:
        params, reasons = _well_space(settings, num_layers, k_max)
    elif label == RegimeLabel.FITS_POORLY:
        params, reasons = _poor_space(settings, num_layers)
    else:
        params, reasons = _open_space(settings, num_layers, k_max)
    space = SearchSpace(
        name=f"{label}_L{num_layers}",
        description=f"Narrowed for '{label}' around lr_high {settings.lr_high:g} on a model "
        f"of {num_layers} layers (the paper's table 7).",
        parameters=params,
    )
    return space, reasons


def space_violations(space: SearchSpace, settings: TrialSettings) -> list[str]:
    """Names of the parameters whose distribution excludes the value in ``settings``.

    A setting left unset (``None``: ``lr_new`` following ``lr_high``, ``lr_low`` with no low
    layers) takes no value from the space, so it is not checked.
    """
    outside = []
    for name, distribution in space.parameters.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(distribution, Fixed):
            inside = value == distribution.value
        elif isinstance(distribution, (FloatRange, IntRange)):
            inside = distribution.low <= value <= distribution.high
            if isinstance(distribution, IntRange) and inside:
                inside = (value - distribution.low) % distribution.step == 0
        else:
            inside = value in distribution.values
        if not inside:
            outside.append(name)
    return outside


def recommend(
    regime: Regime | RegimeLabel, config: ExperimentConfig, num_layers: int
) -> Recommendation:
    """Concrete settings and a narrowed space for ``regime`` (the paper's table 7).

    Args:
        regime: the decided :class:`Regime` (or just its label).
        config: the experiment; its ``settings`` give the base LR and L2 strengths.
        num_layers: the model's layer count L (:func:`nonbinary_ft.models.build_layer_map`).

    Returns:
        A :class:`Recommendation` whose settings lie inside its space.

    Raises:
        ConfigError: a model with fewer than 2 layers.
    """
    label: RegimeLabel = regime.label if isinstance(regime, Regime) else regime
    settings, reasons = recommended_settings(label, config.settings, num_layers)
    space, space_reasons = narrowed_space(label, settings, num_layers)
    return Recommendation(
        regime=label,
        settings=settings,
        reasons=reasons,
        space=space,
        space_reasons=space_reasons,
        base_lr=config.settings.lr_high,
        num_layers=num_layers,
    )


TABLE7_ROWS: dict[str, tuple[str, Any]] = {
    "reinit_layers": ("more layers re-initialised", lambda s: s.reinit_layers > 1),
    "l2sp_layers": ("L2-SP", lambda s: s.l2sp_layers != 0 and s.alpha > 0),
    "low_layers": ("low layers at a low LR", lambda s: s.low_layers > 0),
}
"""Table 7's yes/no rows about layers and regularisation: setting -> (row, the answer of a
setting). Its learning-rate row ('low' or 'high') has no yes/no answer outside a base LR."""


def row_answers(settings: TrialSettings) -> dict[str, bool]:
    """The settings' yes/no answer on each row of :data:`TABLE7_ROWS`."""
    return {name: answer(settings) for name, (_, answer) in TABLE7_ROWS.items()}


def rows_against(recommended: TrialSettings, settings: TrialSettings) -> list[str]:
    """The rows of :data:`TABLE7_ROWS` on which ``settings`` answer otherwise than
    ``recommended`` (a regime's :func:`recommended_settings`), e.g.
    ``["reinit_layers=3 (more layers re-initialised: yes, the regime says no)"]``.

    The paper's own optima each went against its table 7 on at most one row (Caltech kept one
    new layer, Aircraft re-initialised three; tables 6, 7), so one row alone is weak evidence
    against a setting; several rows together are the other regime.
    """
    yes_no = {True: "yes", False: "no"}
    ours, theirs = row_answers(settings), row_answers(recommended)
    return [
        f"{name}={getattr(settings, name)!r} ({row}: {yes_no[ours[name]]}, "
        f"the regime says {yes_no[theirs[name]]})"
        for name, (row, _) in TABLE7_ROWS.items()
        if ours[name] != theirs[name]
    ]
