"""The regime rule refit from past sweeps, and how often each rule was right.

The paper's rule reads the gap (scratch - fixed) with a margin of 0.02, and the Fisher score
at 1.25 before the gap is known. Whether a rule was right on a past sweep is read from its
winner, on table 7's learning-rate row: the weights fit well when the winning ``lr_high``
lies below the median of the learning rates the sweep tried, poorly when above (a winner at
the median says nothing). :func:`refit_rule` fits a one-threshold rule on each piece of
evidence the history holds (Fisher score in log scale, fixed-feature accuracy, gap), keeps
the one with the best leave-one-sweep-out accuracy, and reports it next to the accuracy of
the regimes the paper's rule gave those sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nonbinary_ft.search.warm_start import PastSweep
from nonbinary_ft.vocabulary import RegimeLabel

__all__ = ["RuleFit", "RuleComparison", "winner_regime", "refit_rule"]

FEATURES: dict[str, Callable[[PastSweep], float | None]] = {
    "fisher": lambda past: math.log10(past.evidence.fisher),
    "fixed_feature_accuracy": lambda past: past.evidence.fixed_feature_accuracy,
    "gap": lambda past: past.gap,
}
"""The evidence a rule may read (the Fisher score in log10: its scale spans decades)."""


@dataclass(frozen=True)
class RuleFit:
    """A one-threshold rule: ``fits_well`` when the feature is above (or below) the threshold.

    Attributes:
        feature: which evidence it reads (a key of :data:`FEATURES`).
        threshold: the cut, in the feature's own scale (the Fisher score's, not its log).
        well_above: True when values above the cut mean ``fits_well``.
        train_accuracy: its accuracy on the sweeps it was fit on.
        cv_accuracy: its leave-one-sweep-out accuracy.
    """

    feature: str
    threshold: float
    well_above: bool
    train_accuracy: float
    cv_accuracy: float

    @property
    def text(self) -> str:
        """The rule in words."""
        side = ">" if self.well_above else "<"
        return f"{self.feature} {side} {self.threshold:.3g} -> fits_well, else fits_poorly"


@dataclass(frozen=True)
class RuleComparison:
    """The paper's rule and the refit one on the same past sweeps.

    Attributes:
        sweeps: past sweeps whose winner says which regime was right.
        paper_accuracy: how often the regime the paper's rule gave them was right.
        refit: the best refit rule (None with fewer than three sweeps of both regimes).
    """

    sweeps: int
    paper_accuracy: float | None
    refit: RuleFit | None


def winner_regime(past: PastSweep) -> RegimeLabel | None:
    """Which regime the sweep's winner speaks for, on table 7's learning-rate row."""
    rates = sorted({float(s["lr_high"]) for s, _ in past.ranked if s.get("lr_high")})
    winner = past.winner
    if winner is None or len(rates) < 2 or not winner.get("lr_high"):
        return None
    median = (
        rates[len(rates) // 2]
        if len(rates) % 2
        else math.sqrt(rates[len(rates) // 2 - 1] * rates[len(rates) // 2])
    )
    lr = float(winner["lr_high"])
    if math.isclose(lr, median):
        return None
    return RegimeLabel.FITS_WELL if lr < median else RegimeLabel.FITS_POORLY


def _stump(values: Sequence[float], wells: Sequence[bool]) -> tuple[float, bool, float]:
    """The cut (a midpoint) and direction with the best accuracy on ``values``."""
    ordered = sorted(set(values))
    cuts = [(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)] or ordered
    best = (ordered[0], True, -1.0)
    for cut in cuts:
        for well_above in (True, False):
            right = sum((v > cut) == well_above if w else (v > cut) != well_above
                        for v, w in zip(values, wells, strict=True))  # fmt: skip
            accuracy = right / len(values)
            if accuracy > best[2]:
                best = (cut, well_above, accuracy)
    return best


def _fit(feature: str, points: Sequence[tuple[float, bool]]) -> RuleFit:
    values, wells = [v for v, _ in points], [w for _, w in points]
    cut, well_above, accuracy = _stump(values, wells)
    right = 0
    for i, (value, well) in enumerate(points):
        rest = [p for j, p in enumerate(points) if j != i]
        rest_cut, rest_above, _ = _stump([v for v, _ in rest], [w for _, w in rest])
        right += ((value > rest_cut) == rest_above) == well
    threshold = 10**cut if feature == "fisher" else cut
    return RuleFit(feature, threshold, well_above, accuracy, right / len(points))


def refit_rule(history: Sequence[PastSweep]) -> RuleComparison:
    """The paper's accuracy and the best refit rule on the sweeps whose winner is telling."""
    labelled = [(past, winner_regime(past)) for past in history]
    labelled = [(past, label) for past, label in labelled if label is not None]
    decided = [(p, lab) for p, lab in labelled if p.regime in ("fits_well", "fits_poorly")]
    paper = sum(p.regime == lab for p, lab in decided) / len(decided) if decided else None
    wells = [lab == RegimeLabel.FITS_WELL for _, lab in labelled]
    if len(labelled) < 3 or all(wells) or not any(wells):
        return RuleComparison(len(labelled), paper, None)
    fits = []
    for name, read in FEATURES.items():
        values = [read(past) for past, _ in labelled]
        if all(value is not None for value in values):
            points = [(float(v), w) for v, w in zip(values, wells, strict=True)]  # type: ignore[arg-type]
            fits.append(_fit(name, points))
    best = max(fits, key=lambda fit: (fit.cv_accuracy, fit.train_accuracy), default=None)
    return RuleComparison(len(labelled), paper, best)
