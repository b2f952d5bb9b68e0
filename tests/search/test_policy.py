"""The evidence policy's decision points without Ray: screening suggestions, judging trials,
protecting the top, and the decision log that outlives a driver."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

from nonbinary_ft.results import PruningDecision
from nonbinary_ft.search.policy import (
    DecisionLog,
    PruningPolicy,
    TrialJudge,
    in_top_fraction,
    screen_suggestion,
)
from nonbinary_ft.vocabulary import DecisionKind, TrialStatus


class RulesOutHighLr(PruningPolicy):
    def __init__(self) -> None:
        self.observed: list[str] = []

    def observe(self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]):
        self.observed.append(trial_id)

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        return "test: lr too high" if settings.get("lr_high", 0) >= 0.1 else None


class RulesOutEverything(PruningPolicy):
    def rules_out(self, settings):
        return "test: everything"


def running(epoch: int, accuracy: float) -> dict[str, Any]:
    return {"epoch": epoch, "status": "running", "val_accuracy": accuracy}


def test_a_ruled_out_suggestion_is_logged_with_every_epoch_saved(tmp_path):
    log = DecisionLog(tmp_path / "log.jsonl", epochs=4)
    policy = RulesOutHighLr()
    assert screen_suggestion(policy, {"lr_high": 0.01, "train_seed": 3}, log) is None
    assert screen_suggestion(policy, {"lr_high": 0.5, "train_seed": 3}, log) == "test: lr too high"
    assert screen_suggestion(None, {"lr_high": 0.5}, log) is None
    (decision,) = log.decisions()
    assert decision.kind == DecisionKind.PRUNED_SAMPLE and decision.trial_id is None
    assert decision.settings == {"lr_high": 0.5}  # the seed is not a setting
    assert decision.epochs_saved_estimate == 4.0


def test_the_judge_stops_ruled_out_trials_but_never_their_last_epoch(tmp_path):
    log = DecisionLog(None, epochs=3)
    judge = TrialJudge(log)
    policy = RulesOutHighLr()
    assert judge.judge(policy, "a", {"lr_high": 0.01}, running(1, 0.3)) is None
    assert judge.judge(policy, "b", {"lr_high": 0.5}, running(1, 0.3)) == "test: lr too high"
    last = {"epoch": 3, "status": "completed", "done": True, "val_accuracy": 0.3}
    assert judge.judge(policy, "c", {"lr_high": 0.5}, last) is None
    assert policy.observed == ["a", "b", "c"]
    (decision,) = log.decisions()
    assert (decision.kind, decision.trial_id, decision.epoch) == (DecisionKind.PRUNED_TRIAL, "b", 1)
    assert decision.epochs_saved_estimate == 2.0


def test_the_verdict_is_stamped_on_the_result_that_stopped_the_trial():
    judge = TrialJudge(DecisionLog(None, epochs=3))
    judge.judge(RulesOutHighLr(), "b", {"lr_high": 0.5}, running(1, 0.3))
    judge.note_early_stop("c", {"lr_high": 0.01}, 2, "ASHA: below its rung")
    stopped, later, other = running(1, 0.3), running(2, 0.3), running(1, 0.3)
    judge.stamp("b", stopped)
    judge.stamp("b", later)
    judge.stamp("a", other)
    assert stopped["status"] == TrialStatus.PRUNED and stopped["done"]
    assert stopped["prune_reason"] == "test: lr too high"
    assert later["status"] == other["status"] == "running"
    early = running(2, 0.2)
    judge.stamp("c", early)
    assert early["status"] == "early_stopped" and early["prune_reason"] == "ASHA: below its rung"


def test_top_fraction_of_trials_is_protected_from_pruning():
    judge = TrialJudge(DecisionLog(None, epochs=2), protect_top_fraction=0.25)
    verdicts = {
        trial_id: judge.judge(RulesOutEverything(), trial_id, {"lr_high": 0.01}, running(1, acc))
        for trial_id, acc in zip(("t0", "t1", "t2", "t3"), (0.4, 0.9, 0.5, 0.6), strict=True)
    }
    # t0 is judged alone (nothing to rank against yet) and stopped; t1 leads: protected.
    assert verdicts == {
        "t0": "test: everything",
        "t1": None,
        "t2": "test: everything",
        "t3": "test: everything",
    }
    assert in_top_fraction({"a": 0.9, "b": 0.1}, "a", 0.5)
    assert not in_top_fraction({"a": 0.9}, "a", 1.0)  # nothing to rank against
    assert not in_top_fraction({"a": 0.9, "b": 0.1}, "a", 0.0)


def test_the_log_file_gathers_every_driver_session_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "decisions.jsonl"
    first = DecisionLog(path, epochs=2)
    first.record(DecisionKind.PRUNED_SAMPLE, "one", {"lr_high": 0.5})
    # A resumed sweep unpickles the log with its searcher and appends to the same file.
    resumed = pickle.loads(pickle.dumps(first))
    assert len(resumed) == 0 and resumed.origin == first.origin
    resumed.record(DecisionKind.PRUNED_TRIAL, "two", {"lr_high": 0.5}, "t1", 1)
    with path.open("a") as out:
        out.write('{"kind": "pruned_sa')  # a driver killed mid-write
    decisions = DecisionLog.read(path)
    assert [d.reason for d in decisions] == ["one", "two"]
    assert all(isinstance(d, PruningDecision) for d in decisions)
    assert decisions[1].trial_id == "t1" and decisions[1].epochs_saved_estimate == 1.0
    assert DecisionLog.read(tmp_path / "absent.jsonl") == []
