"""The pruning plug on Ray Tune: the searcher and scheduler wrappers that obey the policy."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from ray import cloudpickle
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.config.space import parse_space
from nonbinary_ft.config.sweep import SweepConfig
from nonbinary_ft.search.policy import DecisionLog, PruningPolicy, TrialJudge
from nonbinary_ft.search.sampling import ConstrainedSpace
from nonbinary_ft.tuning.callbacks import SchedulerBridge
from nonbinary_ft.tuning.scheduler import PruningScheduler
from nonbinary_ft.tuning.searcher import GridSearcher, PruningSearcher, trial_identity
from nonbinary_ft.tuning.session import close_session, open_session

KEY = "test://sweep"


class HighLrRuledOut(PruningPolicy):
    """A rule-based policy: learning rates of 0.1 and above are ruled out."""

    def __init__(self) -> None:
        self.observed: list[str] = []

    def observe(self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]):
        self.observed.append(trial_id)

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        return "lr_high >= 0.1 fits poorly" if settings["lr_high"] >= 0.1 else None


class ListSearcher(Searcher):
    """Suggests fixed configs and remembers what it was told."""

    def __init__(self, configs: list[dict]) -> None:
        super().__init__(metric="val_accuracy", mode="max")
        self.configs = list(configs)
        self.completed: list[tuple[str, Any, bool]] = []
        self.results: list[str] = []

    def suggest(self, trial_id: str):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.results.append(trial_id)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.completed.append((trial_id, result, error))


class Live:
    """The driver session's policy, and the decision log the wrappers write to."""

    def __init__(self, policy: HighLrRuledOut, log: DecisionLog) -> None:
        self.policy = policy
        self.log = log

    @property
    def decisions(self):
        return self.log.decisions()


@pytest.fixture
def sweep_live(tmp_path):
    policy = HighLrRuledOut()
    open_session(KEY, policy=policy)
    yield Live(policy, DecisionLog(tmp_path / "decisions.jsonl", epochs=2))
    close_session(KEY)


def test_searcher_skips_ruled_out_suggestions_and_records_why(sweep_live):
    inner = ListSearcher([{"lr_high": 0.5}, {"lr_high": 0.2}, {"lr_high": 0.01}])
    searcher = PruningSearcher(inner, KEY, sweep_live.log)
    assert searcher.suggest("t1") == {"lr_high": 0.01}
    kinds = [(d.kind, d.settings["lr_high"], d.trial_id) for d in sweep_live.decisions]
    assert kinds == [("pruned_sample", 0.5, None), ("pruned_sample", 0.2, None)]
    assert all(d.reason == "lr_high >= 0.1 fits poorly" for d in sweep_live.decisions)
    # The inner searcher heard of both as pruned (no result, no error) under their own ids.
    assert inner.completed == [("t1", None, False), ("t1~1", None, False)]
    # Ray's id for the trial maps onto the inner searcher's id for it.
    searcher.on_trial_result("t1", {"val_accuracy": 0.5})
    searcher.on_trial_complete("t1", {"val_accuracy": 0.5})
    assert inner.results == ["t1~2"] and inner.completed[-1][0] == "t1~2"


def test_searcher_gives_up_when_every_draw_is_ruled_out(sweep_live):
    searcher = PruningSearcher(
        ListSearcher([{"lr_high": 1.0}] * 5), KEY, sweep_live.log, max_draws=3
    )
    assert searcher.suggest("t1") == Searcher.FINISHED
    assert len(sweep_live.decisions) == 3


def test_searcher_state_round_trip(sweep_live):
    searcher = PruningSearcher(
        ListSearcher([{"lr_high": 0.5}, {"lr_high": 0.01}]), KEY, sweep_live.log
    )
    searcher.suggest("t1")
    other = PruningSearcher(ListSearcher([]), KEY, sweep_live.log)
    other.set_state(searcher.get_state())
    other.on_trial_complete("t1", {"val_accuracy": 1.0})
    assert other.searcher.completed == [("t1~1", {"val_accuracy": 1.0}, False)]


def test_without_a_policy_nothing_is_pruned():
    searcher = PruningSearcher(
        ListSearcher([{"lr_high": 0.5}]), "unregistered://key", DecisionLog(None, epochs=2)
    )
    assert searcher.suggest("t1") == {"lr_high": 0.5}


def test_pruned_optuna_suggestions_are_told_to_optuna_as_pruned(sweep_live):
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parameters = {
        "lr_high": {"type": "choice", "values": [0.5, 0.01]},
        "reinit_layers": {"type": "int", "low": 1, "high": 4},
    }
    space = parse_space({"name": "lr", "parameters": parameters})
    inner = OptunaSearch(
        space=ConstrainedSpace(space, 6, TrialSettings()),
        metric="val_accuracy",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    searcher = PruningSearcher(inner, KEY, sweep_live.log)
    suggested = [searcher.suggest(f"t{index}") for index in range(4)]
    assert [config["lr_high"] for config in suggested] == [0.01] * 4
    assert sorted(config["reinit_layers"] for config in suggested) == [1, 2, 3, 4]
    states = [trial.state for trial in inner._ot_study.trials]
    # Every draw not started ended pruned (ruled out, or a repeat): only the four started
    # trials are left running, so later suggestions need not re-read the study from an old
    # draw still running.
    assert states.count(optuna.trial.TrialState.RUNNING) == 4
    assert states.count(optuna.trial.TrialState.PRUNED) == len(states) - 4
    assert len(states) - 4 >= len(sweep_live.decisions) > 0


def test_a_repeat_is_not_started_and_an_exhausted_space_ends_the_search(sweep_live):
    inner = ListSearcher([{"lr_high": 0.01}, {"lr_high": 0.01}, {"lr_high": 0.02}])
    searcher = PruningSearcher(inner, KEY, sweep_live.log, max_repeats=3)
    assert searcher.suggest("a") == {"lr_high": 0.01}
    # The repeat of a running trial is skipped, and the sampler told it ended pruned.
    assert searcher.suggest("b") == {"lr_high": 0.02}
    searcher.on_trial_complete("b", result={"val_accuracy": 0.6})
    searcher.on_trial_complete("a", result={"val_accuracy": 0.7})
    assert inner.completed == [
        ("b", None, False),
        ("b~1", {"val_accuracy": 0.6}, False),
        ("a", {"val_accuracy": 0.7}, False),
    ]
    # Nothing but repeats, max_repeats times in a row: the space is exhausted.
    inner.configs = [{"lr_high": 0.01}, {"lr_high": 0.02}, {"lr_high": 0.01}, {"lr_high": 0.5}]
    assert searcher.suggest("c") == Searcher.FINISHED
    assert inner.configs == [{"lr_high": 0.5}]  # three draws, then it stopped asking


@pytest.mark.parametrize("algorithm", ["tpe", "random"])
def test_a_finite_space_is_searched_to_its_end_without_redrawing(sweep_live, algorithm):
    from nonbinary_ft.tuning.sampler import optuna_searcher

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parameters = {
        "lr_high": {"type": "choice", "values": [0.5, 0.01, 0.02, 0.03]},
        "reinit_layers": {"type": "int", "low": 1, "high": 4},
        "l2sp_layers": {"type": "choice", "values": [0, 1, 2]},
    }
    space = parse_space({"name": "finite", "parameters": parameters})
    sweep = SweepConfig.model_validate({"search": {"algorithm": algorithm, "seed": 0}})
    inner = optuna_searcher(sweep, space, 6, TrialSettings(), ())
    searcher = PruningSearcher(inner, KEY, sweep_live.log)
    started = []
    while (config := searcher.suggest(f"t{len(started)}")) != Searcher.FINISHED:
        started.append(config)
        searcher.on_trial_complete(f"t{len(started) - 1}", {"val_accuracy": config["lr_high"]})
    # 3 learning rates the policy allows x 4 k x 3 m: each once, then the search ends.
    assert len({trial_identity(config) for config in started}) == len(started) == 36
    assert all(config["lr_high"] < 0.1 for config in started)
    # A repeat is followed by an untried point, not by draws until the sampler finds one.
    assert len(inner._ot_study.trials) <= 2 * len(started) + 1


def test_what_completed_survives_a_restore(sweep_live):
    searcher = PruningSearcher(ListSearcher([{"lr_high": 0.01}]), KEY, sweep_live.log)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_accuracy": 0.5})
    inner = ListSearcher([{"lr_high": 0.01}, {"lr_high": 0.03}])
    restored = PruningSearcher(inner, KEY, sweep_live.log)
    restored.set_state(cloudpickle.loads(cloudpickle.dumps(searcher.get_state())))
    assert restored.suggest("b") == {"lr_high": 0.03}


def test_a_resume_reconciles_with_the_trials_the_experiment_state_restored(sweep_live):
    """Ray restores the searcher's state from files uploaded apart from the experiment state:
    a trial the searcher started may be unknown to the restored experiment (lost with the
    driver). It runs again; one the experiment restored is not started twice."""
    from nonbinary_ft.tuning.searcher import GridSearcher, trial_identity
    from nonbinary_ft.tuning.session import session_of

    points = [{"lr_high": 0.01}, {"lr_high": 0.02}, {"lr_high": 0.03}]
    before = PruningSearcher(GridSearcher(points), KEY, sweep_live.log)
    assert [before.suggest(t) for t in ("a", "b")] == points[:2]
    grid_state = before.searcher.get_state()
    restored = PruningSearcher(GridSearcher(points), KEY, sweep_live.log)
    restored.set_state(before.get_state())
    restored.searcher.set_state(grid_state)  # the grid thinks 0.01 and 0.02 were issued
    session_of(KEY).restored = frozenset({trial_identity(points[0])})  # 0.02 was lost
    try:
        assert restored.suggest("c") == points[1]  # the lost one again
        assert restored.suggest("d") == points[2]
        assert restored.suggest("e") == Searcher.FINISHED  # 0.01 resumes in Ray, not here
    finally:
        session_of(KEY).restored = None


def _trial(trial_id: str, lr: float, status: str = "RUNNING"):
    return SimpleNamespace(trial_id=trial_id, config={"lr_high": lr}, status=status, last_result={})


def test_scheduler_stops_running_trials_in_a_ruled_out_region(sweep_live):
    scheduler = PruningScheduler(FIFOScheduler(), KEY, TrialJudge(sweep_live.log))
    running = {"epoch": 1, "status": "running", "val_accuracy": 0.3}
    assert scheduler.on_trial_result(None, _trial("a", 0.01), running) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, _trial("b", 0.5), running) == TrialScheduler.STOP
    # a trial's last epoch is already paid for: never pruned
    last = {"epoch": 2, "status": "completed", "done": True, "val_accuracy": 0.3}
    assert scheduler.on_trial_result(None, _trial("c", 0.5), last) == TrialScheduler.CONTINUE
    assert sweep_live.policy.observed == ["a", "b", "c"]
    (decision,) = sweep_live.decisions
    assert (decision.kind, decision.trial_id, decision.epoch) == ("pruned_trial", "b", 1)


def test_scheduler_records_the_inner_schedulers_early_stops(sweep_live):
    class AlwaysStop(FIFOScheduler):
        def on_trial_result(self, tune_controller, trial, result):
            return TrialScheduler.STOP

    scheduler = PruningScheduler(AlwaysStop(), KEY, TrialJudge(sweep_live.log))
    result = {"epoch": 1, "status": "running", "val_accuracy": 0.3}
    assert scheduler.on_trial_result(None, _trial("a", 0.01), result) == TrialScheduler.STOP
    (decision,) = sweep_live.decisions
    assert decision.kind == "early_stopped" and "AlwaysStop" in decision.reason


def test_stamp_marks_the_result_that_stopped_the_trial(sweep_live):
    scheduler = PruningScheduler(FIFOScheduler(), KEY, TrialJudge(sweep_live.log))
    trial = _trial("b", 0.5)
    result = {"epoch": 1, "status": "running", "val_accuracy": 0.3}
    scheduler.on_trial_result(None, trial, dict(result))
    SchedulerBridge(scheduler).on_trial_result(0, [trial], trial, result)
    assert result["status"] == "pruned" and result["prune_reason"] == "lr_high >= 0.1 fits poorly"
    other = {"epoch": 1, "status": "running"}
    SchedulerBridge(scheduler).on_trial_result(0, [], _trial("a", 0.01), other)
    assert other["status"] == "running"


def test_asha_rungs_and_protected_ranking_survive_a_restore(sweep_live):
    asha = ASHAScheduler(
        time_attr="epoch",
        metric="val_accuracy",
        mode="max",
        max_t=4,
        grace_period=1,
        reduction_factor=2,
    )
    scheduler = PruningScheduler(asha, KEY, TrialJudge(sweep_live.log, 0.5))
    callback = SchedulerBridge(scheduler)
    # Ray pickles scheduler and callbacks together in tuner.pkl when the experiment starts...
    at_start = cloudpickle.dumps((scheduler, callback))
    for trial_id, accuracy in (("a", 0.8), ("b", 0.9)):
        trial = _trial(trial_id, 0.01)
        scheduler.on_trial_add(None, trial)
        result = {"epoch": 1, "status": "running", "val_accuracy": accuracy}
        assert scheduler.on_trial_result(None, trial, result) == TrialScheduler.CONTINUE
    # ...and checkpoints the callbacks' state as the sweep goes on.
    saved = cloudpickle.dumps(callback.get_state())

    def weak_trial_decision(restored: PruningScheduler) -> str:
        weak = _trial("c", 0.01)
        restored.on_trial_add(None, weak)
        result = {"epoch": 1, "status": "running", "val_accuracy": 0.1}
        return restored.on_trial_result(None, weak, result)

    fresh, _ = cloudpickle.loads(at_start)
    # Empty rungs: nothing to compare the weak trial with.
    assert weak_trial_decision(fresh) == TrialScheduler.CONTINUE
    restored, restored_callback = cloudpickle.loads(at_start)
    restored_callback.set_state(cloudpickle.loads(saved))
    assert restored.judge.best == {"a": 0.8, "b": 0.9}
    # The restored rung holds 0.8 and 0.9: a 0.1 is below its cut-off.
    assert weak_trial_decision(restored) == TrialScheduler.STOP


def test_grid_searcher_resumes_where_it_stopped(tmp_path):
    grid = GridSearcher([{"lr_high": 0.1}, {"lr_high": 0.2}, {"lr_high": 0.3}])
    assert grid.suggest("a") == {"lr_high": 0.1}
    grid.save(str(tmp_path / "grid.json"))
    restored = GridSearcher([])
    restored.restore(str(tmp_path / "grid.json"))
    assert [restored.suggest(t) for t in "bcd"] == [
        {"lr_high": 0.2},
        {"lr_high": 0.3},
        Searcher.FINISHED,
    ]


def test_a_past_winner_the_model_must_clamp_is_enqueued_as_a_value_of_the_space(tmp_path):
    """A prior table's winner (m = 5 of a deeper model) on test_resnet (L = 6) with k = 2
    runs with m = L - k = 4; the sampler is given 5, the option it could itself propose (4
    is no option: Optuna refused it, and the sweep crashed at its first suggestion)."""
    from nonbinary_ft.config import SweepConfig, TrialSettings
    from nonbinary_ft.config.space import parse_space
    from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep
    from nonbinary_ft.tuning.searcher import create_searcher
    from nonbinary_ft.vocabulary import DecisionKind

    space = parse_space({
        "name": "small",
        "parameters": {
            "reinit_layers": {"type": "choice", "values": [1, 2]},
            "lr_high": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "l2sp_layers": {"type": "choice", "values": [0, 5, "all"]},
        },
    })  # fmt: skip
    winner = {"reinit_layers": 2, "lr_high": 0.01, "l2sp_layers": 5, "alpha": 0.01}
    past = PastSweep("deeper", EvidenceVector(0.5, 1.0), ((winner, 0.9),), origin="prior")
    sweep = SweepConfig.model_validate({"search": {"algorithm": "zero_shot", "seed": 0}})
    log = DecisionLog(tmp_path / "decisions.jsonl", epochs=2)
    open_session(KEY, policy=None)
    try:
        searcher = create_searcher(
            sweep, KEY, log, space=space, num_layers=6, base=TrialSettings(), history=[past]
        )
        first = searcher.suggest("t1")
    finally:
        close_session(KEY)
    assert first["reinit_layers"] == 2 and first["l2sp_layers"] == 4
    assert first["lr_high"] == pytest.approx(0.01)
    (warm,) = [d for d in log.decisions() if d.kind == DecisionKind.WARM_START]
    assert warm.settings["l2sp_layers"] == 4  # logged as it runs
