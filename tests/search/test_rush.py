"""RUSH: a trial far below the incumbent's curve at the rung stops; nothing else does."""

from __future__ import annotations

from nonbinary_ft.search.rush import RushRule


def test_nothing_stops_before_a_trial_has_completed():
    rule = RushRule(epochs=9)
    assert rule.rung_epoch == 3
    assert rule.observe("a", 3, 0.0) is None


def test_a_trial_far_below_the_incumbent_at_the_rung_stops():
    rule = RushRule(epochs=9, margin=0.15)
    for epoch, value in enumerate((0.3, 0.5, 0.6), start=1):
        rule.observe("best", epoch, value)
    rule.complete("best", 9, 0.9, completed=True)
    assert rule.observe("slow", 2, 0.0) is None  # only the rung is judged
    assert rule.observe("close", 3, 0.46) is None  # within the margin of 0.6
    reason = rule.observe("weak", 3, 0.44)
    assert reason is not None and "0.440" in reason and "0.600" in reason


def test_a_stopped_or_diverged_trial_never_becomes_the_incumbent():
    rule = RushRule(epochs=6)
    rule.observe("a", 2, 0.5)
    rule.complete("a", 6, 0.6, completed=True)
    rule.observe("b", 2, 0.9)
    rule.complete("b", 2, 0.9, completed=False)
    assert rule.incumbent == "a"
    rule.observe("c", 2, 0.55)
    rule.complete("c", 6, 0.7, completed=True)
    assert rule.incumbent == "c"
