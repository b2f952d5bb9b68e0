"""The regime rule on hand-made evidence: gap first, Fisher provisionally, else unclear."""

from __future__ import annotations

import pytest

from nonbinary_ft.analysis import Evidence, ProbeResult, ScratchResult, decide_regime
from nonbinary_ft.analysis.scores import ScoreResult
from nonbinary_ft.config import AnalysisConfig

CFG = AnalysisConfig()  # gap margin 0.02, Fisher threshold 1.25 +- 0.05


def evidence(fixed=0.6, scratch=None, fisher=None, emd=None, chance=0.1) -> Evidence:
    return Evidence(
        fixed_accuracy=fixed,
        scratch_accuracy=scratch,
        fisher=fisher,
        emd=emd,
        chance_accuracy=chance,
        fisher_reason=None if fisher is not None else "not computed: test",
    )


@pytest.mark.parametrize(
    ("scratch", "label"),
    [(0.5, "fits_well"), (0.7, "fits_poorly"), (0.61, "unclear"), (0.585, "unclear")],
    ids=["gap-0.1", "gap+0.1", "gap+0.01", "gap-0.015"],
)
def test_the_gap_decides_once_known(scratch, label):
    regime = decide_regime(evidence(fixed=0.6, scratch=scratch, fisher=1.3), CFG)
    assert regime.label == label
    assert regime.decided_by == "gap" and not regime.provisional
    assert regime.gap == pytest.approx(scratch - 0.6)
    assert "gap = scratch - fixed" in regime.rule and "0.02" in regime.rule


def test_the_margin_is_the_configured_one():
    wide = AnalysisConfig(gap_margin=0.15)
    assert decide_regime(evidence(scratch=0.7), wide).label == "unclear"
    assert decide_regime(evidence(scratch=0.7), CFG).label == "fits_poorly"


@pytest.mark.parametrize(
    ("fisher", "label"),
    [(3.47, "fits_well"), (1.35, "fits_well"), (1.18, "fits_poorly"), (0.83, "fits_poorly")],
    ids=["DTD", "Caltech", "Cars", "Aircraft"],
)
def test_fisher_alone_decides_provisionally_on_the_papers_values(fisher, label):
    regime = decide_regime(evidence(fisher=fisher), CFG)
    assert regime.label == label
    assert regime.decided_by == "fisher" and regime.provisional
    assert "weak evidence" in regime.rule and "provisional" in regime.rule


def test_fisher_near_the_threshold_is_unclear():
    regime = decide_regime(evidence(fisher=1.27), CFG)
    assert regime.label == "unclear" and regime.provisional and regime.decided_by == "fisher"
    lower = AnalysisConfig(fisher_threshold=1.0, fisher_margin=0.0)
    assert decide_regime(evidence(fisher=1.27), lower).label == "fits_well"


def test_no_evidence_is_unclear_and_says_why():
    regime = decide_regime(evidence(fisher=None), CFG)
    assert regime.label == "unclear" and regime.decided_by == "none" and regime.provisional
    assert "not computed: test" in regime.rule


def test_a_disagreement_between_gap_and_fisher_is_recorded():
    # Fisher says poorly (0.83, like Aircraft) but from scratch is far worse: the gap wins.
    regime = decide_regime(evidence(fixed=0.6, scratch=0.4, fisher=0.83), CFG)
    assert regime.label == "fits_well"
    assert len(regime.disagreements) == 1
    assert "Fisher 0.83 says fits_poorly" in regime.disagreements[0]
    agreeing = decide_regime(evidence(fixed=0.6, scratch=0.4, fisher=3.47), CFG)
    assert agreeing.disagreements == ()


def test_accuracies_at_chance_are_flagged_and_emd_is_reported_only():
    regime = decide_regime(evidence(fixed=0.11, scratch=0.10, emd=0.55, chance=0.1), CFG)
    assert any("chance" in note for note in regime.notes)
    assert any("EMD similarity 0.55 is reported only" in note for note in regime.notes)


def test_evidence_from_the_analysis_steps():
    probe = ProbeResult(0.8, 0.75, 1.0, 0.0, (), 0.34)
    scores = {
        "fisher": ScoreResult("fisher", 1.4, None, True),
        "emd": ScoreResult("emd", None, "needs a sample of the source data set", True),
    }
    cheap = Evidence.from_parts(probe, scores)
    assert cheap.fixed_accuracy == 0.8 and cheap.fisher == 1.4 and cheap.gap is None
    assert cheap.emd is None and "source" in cheap.emd_reason
    diverged = Evidence.from_parts(probe, scores, ScratchResult(None, None, "diverged"))
    assert diverged.gap is None
    full = Evidence.from_parts(probe, scores, ScratchResult(0.9, 0.88, "completed"))
    assert full.gap == pytest.approx(0.1)
    assert full.table1() == {
        "fixed_feature_accuracy": 0.8,
        "from_scratch_accuracy": 0.9,
        "gap": pytest.approx(0.1),
        "fisher": 1.4,
        "emd_similarity": None,
        "fixed_feature_test_accuracy": 0.75,
        "from_scratch_test_accuracy": 0.88,
    }


def test_a_label_that_a_smaller_scratch_budget_would_change_is_flagged():
    from nonbinary_ft.results import EpochRecord

    # The quickstart's pattern: the scratch run catches up with the probe as it trains.
    curve = tuple(EpochRecord(e, val_accuracy=v) for e, v in enumerate((0.1, 0.5, 0.3, 0.81), 1))
    probe = ProbeResult(0.82, 0.8, 1.0, 0.0, (), 0.1)
    scratch = ScratchResult(0.81, 0.8, "completed", epochs=4, curve=curve)
    regime = decide_regime(Evidence.from_parts(probe, {}, scratch), CFG)
    assert regime.label == "unclear"
    # Best so far, minus the probe's accuracy, at each budget.
    assert regime.gap_by_epoch == pytest.approx((-0.72, -0.32, -0.32, -0.01))
    (note,) = [note for note in regime.notes if "depends on the from-scratch budget" in note]
    assert "3 of 4 budgets would not give unclear" in note
    steady = ScratchResult(0.81, 0.8, "completed", epochs=2, curve=curve[-1:])
    regime = decide_regime(Evidence.from_parts(probe, {}, steady), CFG)
    assert not any("depends on the from-scratch budget" in note for note in regime.notes)
