"""How numbers and settings read in a report (one place, so HTML and Markdown agree).

Accuracies are stored as fractions and shown as percentages with two decimals, as in the
paper's tables; differences between accuracies are shown in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nonbinary_ft.config.settings import SETTING_NAMES
from nonbinary_ft.results import Missing

__all__ = [
    "percent",
    "points",
    "number",
    "duration",
    "setting_value",
    "settings_text",
    "value_or_missing",
]


def percent(value: float | None) -> str:
    """An accuracy fraction as ``"87.31 %"``; ``"n/a"`` for None."""
    return "n/a" if value is None else f"{100 * value:.2f} %"


def points(value: float | None) -> str:
    """A difference of accuracy fractions in percentage points, signed: ``"+1.23 points"``."""
    return "n/a" if value is None else f"{100 * value:+.2f} points"


def number(value: float | None, digits: int = 3) -> str:
    """A score with ``digits`` significant digits; ``"n/a"`` for None."""
    return "n/a" if value is None else f"{value:.{digits}g}"


def duration(seconds: float | None) -> str:
    """Seconds in the largest sensible unit: ``"42 s"``, ``"3.5 min"``, ``"2.1 h"``."""
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def setting_value(value: Any) -> str:
    """One setting's value: LRs and strengths in ``g`` format, the rest as they are."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_text(settings: Mapping[str, Any]) -> str:
    """Settings on one line, unset (None) ones left out: ``"reinit_layers=2, lr_high=0.002"``."""
    names = [n for n in SETTING_NAMES if n in settings] + [
        n for n in settings if n not in SETTING_NAMES
    ]
    return ", ".join(
        f"{name}={setting_value(settings[name])}" for name in names if settings[name] is not None
    )


def value_or_missing(value: float | Missing | None, show: Any = percent) -> str:
    """``show(value)``, or ``"missing: <why>"`` for a :class:`Missing` marker."""
    if isinstance(value, Missing):
        return str(value)
    return show(value)
