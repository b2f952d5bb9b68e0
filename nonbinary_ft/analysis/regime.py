"""From evidence to a regime: do the pre-trained weights fit the target well or poorly?

The rule is the paper's (section 4.6, table 7):

1. Once the from-scratch accuracy is known, the **gap** ``scratch - fixed`` (validation
   accuracies) decides: below ``-gap_margin`` the weights fit well, above ``+gap_margin``
   they fit poorly, in between it is unclear. The paper's gaps are -16.2 and -7.8 points
   (Caltech, DTD) against +28.5 and +28.9 (Cars, Aircraft), so a 2-point margin only
   absorbs noise.
2. Before that, the **normalised Fisher score** decides *provisionally*: above
   ``fisher_threshold + fisher_margin`` well, below ``fisher_threshold - fisher_margin``
   poorly. The default threshold 1.25 sits between the paper's 1.18 (Cars, poorly) and
   1.35 (Caltech, well), but DTD (3.47) and Aircraft (0.83) show how wide the spread is,
   the paper itself calls the ratio less reliable, and its absolute value depends on the
   estimator (ours shrinks the within-class covariance). It is weak evidence.
3. With neither, the regime is unclear (the binary default is recommended).

EMD similarity is reported, never used: the paper found it a poor predictor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from nonbinary_ft.config import AnalysisConfig
from nonbinary_ft.vocabulary import RegimeLabel

if TYPE_CHECKING:  # the rules read the evidence; measuring it needs torch, they do not
    from nonbinary_ft.analysis.probe import ProbeResult
    from nonbinary_ft.analysis.scores import ScoreResult
    from nonbinary_ft.analysis.scratch import ScratchResult

__all__ = ["RegimeLabel", "Evidence", "Regime", "decide_regime", "fisher_vote"]


@dataclass(frozen=True)
class Evidence:
    """What the regime is decided on; every field may still be unknown (``None``).

    Attributes:
        fixed_accuracy: validation accuracy of the linear probe on the frozen features.
        scratch_accuracy: validation accuracy of the from-scratch baseline.
        fisher: normalised Fisher score of the pre-trained features.
        emd: EMD domain similarity (reported only).
        fixed_test_accuracy, scratch_test_accuracy: test accuracies (reported only).
        chance_accuracy: share of the most frequent validation class.
        fisher_reason, emd_reason: why a score is missing, when it is.
        scratch_curve: the from-scratch run's best validation accuracy so far, per epoch
            (how the gap would read at a smaller budget).
    """

    fixed_accuracy: float | None = None
    scratch_accuracy: float | None = None
    fisher: float | None = None
    emd: float | None = None
    fixed_test_accuracy: float | None = None
    scratch_test_accuracy: float | None = None
    chance_accuracy: float | None = None
    fisher_reason: str | None = None
    emd_reason: str | None = None
    scratch_curve: tuple[float, ...] = ()

    @property
    def gap(self) -> float | None:
        """``scratch - fixed`` accuracy, when both are known."""
        if self.fixed_accuracy is None or self.scratch_accuracy is None:
            return None
        return self.scratch_accuracy - self.fixed_accuracy

    @classmethod
    def from_parts(
        cls,
        probe: ProbeResult | None = None,
        scores: Mapping[str, ScoreResult] | None = None,
        scratch: ScratchResult | None = None,
    ) -> Evidence:
        """Gather the evidence from the analysis steps that have run so far."""
        scores = scores or {}
        fisher, emd = scores.get("fisher"), scores.get("emd")
        usable = scratch is not None and scratch.usable
        return cls(
            fixed_accuracy=probe.val_accuracy if probe else None,
            scratch_accuracy=scratch.val_accuracy if usable and scratch else None,
            fisher=fisher.value if fisher else None,
            emd=emd.value if emd else None,
            fixed_test_accuracy=probe.test_accuracy if probe else None,
            scratch_test_accuracy=scratch.test_accuracy if usable and scratch else None,
            chance_accuracy=probe.chance_accuracy if probe else None,
            fisher_reason=fisher.reason if fisher else "not computed",
            emd_reason=emd.reason if emd else "not computed",
            scratch_curve=_best_so_far(scratch) if usable and scratch else (),
        )

    def gap_by_epoch(self) -> tuple[float, ...]:
        """The gap had the from-scratch run stopped after each epoch (empty: unknown)."""
        if self.fixed_accuracy is None:
            return ()
        return tuple(value - self.fixed_accuracy for value in self.scratch_curve)

    def table1(self) -> dict[str, float | None]:
        """The paper's table 1 row: fixed-feature, from-scratch, gap, Fisher, EMD."""
        return {
            "fixed_feature_accuracy": self.fixed_accuracy,
            "from_scratch_accuracy": self.scratch_accuracy,
            "gap": self.gap,
            "fisher": self.fisher,
            "emd_similarity": self.emd,
            "fixed_feature_test_accuracy": self.fixed_test_accuracy,
            "from_scratch_test_accuracy": self.scratch_test_accuracy,
        }


@dataclass(frozen=True)
class Regime:
    """The decision and how it was reached.

    Attributes:
        label: ``"fits_well"``, ``"fits_poorly"`` or ``"unclear"``.
        provisional: True until the gap is known (decided by Fisher, or by nothing).
        decided_by: ``"gap"``, ``"fisher"`` or ``"none"``.
        rule: the rule applied, with the numbers, in words.
        gap, fisher: the values the rule read (``None`` when unknown).
        gap_margin, fisher_threshold, fisher_margin: the rule's settings.
        disagreements: where the evidence points different ways.
        notes: caveats (evidence near chance, a label that a smaller from-scratch budget
            would change, EMD reported only, ...).
        gap_by_epoch: the gap at each from-scratch budget (its sensitivity to the budget).
    """

    label: RegimeLabel
    provisional: bool
    decided_by: Literal["gap", "fisher", "none"]
    rule: str
    gap: float | None
    fisher: float | None
    gap_margin: float
    fisher_threshold: float
    fisher_margin: float
    disagreements: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gap_by_epoch: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def fisher_vote(fisher: float | None, config: AnalysisConfig) -> RegimeLabel | None:
    """What the Fisher score alone says (``None`` when it is unknown)."""
    if fisher is None:
        return None
    if fisher > config.fisher_threshold + config.fisher_margin:
        return RegimeLabel.FITS_WELL
    if fisher < config.fisher_threshold - config.fisher_margin:
        return RegimeLabel.FITS_POORLY
    return RegimeLabel.UNCLEAR


def _best_so_far(scratch: ScratchResult) -> tuple[float, ...]:
    values = [r.val_accuracy for r in scratch.curve if r.val_accuracy is not None]
    return tuple(max(values[: i + 1]) for i in range(len(values)))


def _budget_note(evidence: Evidence, label: RegimeLabel, margin: float) -> str | None:
    """A note when a smaller from-scratch budget would have given another label."""
    gaps = evidence.gap_by_epoch()
    differ = [(e, g) for e, g in enumerate(gaps, 1) if _gap_label(g, margin) != label]
    if not differ:
        return None
    readings = ", ".join(f"{g:+.3f} at epoch {e}" for e, g in enumerate(gaps, 1))
    return (
        f"the gap depends on the from-scratch budget ({readings}): {len(differ)} of "
        f"{len(gaps)} budgets would not give {label}; the last epoch decides, and the paper "
        "trained its from-scratch models to convergence, so give it more epochs "
        "(analysis.scratch.epochs) before trusting the label"
    )


def _gap_label(gap: float, margin: float) -> RegimeLabel:
    if gap < -margin:
        return RegimeLabel.FITS_WELL
    if gap > margin:
        return RegimeLabel.FITS_POORLY
    return RegimeLabel.UNCLEAR


def _fisher_rule(fisher: float, vote: RegimeLabel, config: AnalysisConfig) -> str:
    low = config.fisher_threshold - config.fisher_margin
    high = config.fisher_threshold + config.fisher_margin
    return (
        f"normalised Fisher score {fisher:.3g}: > {high:.3g} -> fits_well, < {low:.3g} -> "
        f"fits_poorly, else unclear; gives {vote} (weak evidence, provisional until the "
        "from-scratch baseline is known)"
    )


def _gap_caveats(
    evidence: Evidence, label: RegimeLabel, vote: RegimeLabel | None, config: AnalysisConfig
) -> tuple[list[str], list[str]]:
    """Where the Fisher score disagrees with the gap, and whether the gap means anything."""
    disagreements, notes = [], []
    if vote in (RegimeLabel.FITS_WELL, RegimeLabel.FITS_POORLY) and vote != label:
        disagreements.append(
            f"Fisher {evidence.fisher:.3g} says {vote} (threshold {config.fisher_threshold:g} "
            f"+- {config.fisher_margin:g}) but the gap says {label}; the gap decides"
        )
    best = max(evidence.fixed_accuracy or 0.0, evidence.scratch_accuracy or 0.0)
    chance, margin = evidence.chance_accuracy, config.gap_margin
    if chance is not None and best < chance + margin:
        notes.append(
            f"both accuracies are within {margin:g} of chance ({chance:.3f}): the gap "
            "carries little information; give the from-scratch run a larger budget"
        )
    budget = _budget_note(evidence, label, margin)
    if budget is not None:
        notes.append(budget)
    return disagreements, notes


def decide_regime(evidence: Evidence, config: AnalysisConfig) -> Regime:
    """Apply the rule of the module docstring to ``evidence``.

    Args:
        evidence: what is known so far.
        config: the analysis section (``gap_margin``, ``fisher_threshold``,
            ``fisher_margin``).

    Returns:
        The :class:`Regime`, provisional unless the gap decided.
    """
    gap, fisher = evidence.gap, evidence.fisher
    vote = fisher_vote(fisher, config)
    margin = config.gap_margin
    disagreements: list[str] = []
    notes: list[str] = []
    decided_by: Literal["gap", "fisher", "none"]
    if gap is not None:
        label, decided_by = _gap_label(gap, margin), "gap"
        rule = (
            f"gap = scratch - fixed = {evidence.scratch_accuracy:.4f} - "
            f"{evidence.fixed_accuracy:.4f} = {gap:+.4f} (validation accuracy): "
            f"< -{margin:g} -> fits_well, > +{margin:g} -> fits_poorly, else unclear; "
            f"gives {label}"
        )
        disagreements, notes = _gap_caveats(evidence, label, vote, config)
    elif vote is not None and fisher is not None:
        label, decided_by = vote, "fisher"
        rule = _fisher_rule(fisher, vote, config)
    else:
        label, decided_by = RegimeLabel.UNCLEAR, "none"
        rule = (
            "neither the gap (from-scratch baseline not run) nor the Fisher score "
            f"({evidence.fisher_reason}) is known: unclear, the binary default is recommended"
        )
    if evidence.emd is not None:
        notes.append(
            f"EMD similarity {evidence.emd:.3g} is reported only: the paper found it a poor "
            "predictor of how well the weights fit"
        )
    return Regime(
        label=label,
        provisional=decided_by != "gap",
        decided_by=decided_by,
        rule=rule,
        gap=gap,
        fisher=fisher,
        gap_margin=margin,
        fisher_threshold=config.fisher_threshold,
        fisher_margin=config.fisher_margin,
        disagreements=tuple(disagreements),
        notes=tuple(notes),
        gap_by_epoch=evidence.gap_by_epoch(),
    )
