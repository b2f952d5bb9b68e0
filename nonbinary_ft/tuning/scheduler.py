"""The sweep's scheduler on Ray Tune: RUSH, ASHA (or none) behind the pruning hook.

:class:`PruningScheduler` feeds every result to the evidence policy through a
:class:`~nonbinary_ft.search.policy.TrialJudge`, asks the wrapped scheduler first, and stops
a running trial whose settings the policy rules out; it records the wrapped scheduler's own
early stops too. Ray Tune saves the searcher's and the callbacks' state with the experiment,
but not the scheduler's: the :class:`~nonbinary_ft.tuning.callbacks.SchedulerBridge`
callback carries it, so that ASHA's rungs survive ``Tuner.restore``.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from nonbinary_ft.config.sweep import SweepConfig
from nonbinary_ft.search.algorithms import scheduler_kind
from nonbinary_ft.search.policy import DecisionLog, TrialJudge, settings_of
from nonbinary_ft.search.rush import RushRule
from nonbinary_ft.tuning.searcher import METRIC, MODE
from nonbinary_ft.tuning.session import session_of

__all__ = ["PruningScheduler", "RushScheduler", "create_scheduler"]


class RushScheduler(FIFOScheduler):
    """Stops a trial once, at its rung, when it is far below the incumbent's curve.

    The rule is :class:`~nonbinary_ft.search.rush.RushRule`; trials run first come, first
    served, as with no scheduler.
    """

    def __init__(self, rule: RushRule, metric: str = METRIC) -> None:
        super().__init__()
        self.rule = rule
        self._metric = metric
        self.reasons: dict[str, str] = {}

    @property
    def metric(self) -> str:
        """The metric judged."""
        return self._metric

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        """STOP when the rule says so (the reason is kept for the decision log)."""
        reason = self.rule.observe(trial.trial_id, int(result["epoch"]), result[self._metric])
        if reason is None:
            return TrialScheduler.CONTINUE
        self.reasons[trial.trial_id] = reason
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        """A completed trial may become the incumbent."""
        if result and self._metric in result and "epoch" in result:
            completed = result.get("status") == "completed"
            self.rule.complete(
                trial.trial_id, int(result["epoch"]), result[self._metric], completed
            )


class PruningScheduler(TrialScheduler):
    """A scheduler wrapper that stops running trials the pruning policy rules out.

    Args:
        scheduler: the scheduler to wrap (ASHA, or FIFO for none).
        sweep_key: the key of the driver session that holds the policy.
        judge: applies the policy and keeps each stopped trial's verdict.
        time_attr: the result key that counts epochs.
    """

    def __init__(
        self,
        scheduler: TrialScheduler,
        sweep_key: str,
        judge: TrialJudge,
        time_attr: str = "epoch",
    ):
        super().__init__()
        self.scheduler = scheduler
        self.sweep_key = sweep_key
        self.judge = judge
        self.time_attr = time_attr

    @property
    def metric(self) -> str | None:
        """The wrapped scheduler's metric."""
        return self.scheduler.metric

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Forwarded to the wrapped scheduler."""
        return self.scheduler.set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """Forwarded."""
        self.scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        """Forwarded."""
        self.scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        """Stop the trial when the policy rules its settings out; else ask the wrapped one."""
        decision = self.scheduler.on_trial_result(tune_controller, trial, result)
        policy = session_of(self.sweep_key).policy
        if self.judge.judge(policy, trial.trial_id, trial.config, result) is not None:
            return TrialScheduler.STOP
        finished = bool(result.get("done")) or result.get("status") != "running"
        if decision == TrialScheduler.STOP and not finished:
            epoch = result.get(self.time_attr)
            reason = getattr(self.scheduler, "reasons", {}).get(
                trial.trial_id,
                f"{self.scheduler.metric} below the cut-off of its rung at {self.time_attr} "
                f"{epoch}",
            )
            self.judge.note_early_stop(
                trial.trial_id,
                settings_of(trial.config),
                epoch,
                f"{type(self.scheduler).__name__}: {reason}",
            )
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        """Forwarded."""
        self.scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        """Forwarded."""
        self.scheduler.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Forwarded."""
        return self.scheduler.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        """Forwarded."""
        return self.scheduler.debug_string()

    def save(self, checkpoint_path: str) -> None:
        """Forwarded."""
        self.scheduler.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Forwarded."""
        self.scheduler.restore(checkpoint_path)

    def get_state(self) -> dict[str, Any]:
        """The wrapped scheduler (its rungs and trial records) and the judge's records."""
        return {"scheduler": copy.deepcopy(self.scheduler), "judge": self.judge.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.scheduler = state["scheduler"]
        self.judge.set_state(state["judge"])


def create_scheduler(
    sweep: SweepConfig, epochs: int, sweep_key: str, log: DecisionLog
) -> PruningScheduler:
    """Build the scheduler of ``sweep.scheduler`` (RUSH or ASHA over epochs, or none).

    Args:
        sweep: the sweep section.
        epochs: training epochs per trial (ASHA's ``max_t``).
        sweep_key: key of the driver session that holds the pruning policy.
        log: where pruning decisions go.
    """
    inner: TrialScheduler
    kind = scheduler_kind(sweep)
    if kind == "rush":
        rule = RushRule(epochs, sweep.scheduler.rush_rung, sweep.scheduler.rush_margin)
        inner = RushScheduler(rule)
    elif kind == "asha":
        inner = ASHAScheduler(
            time_attr="epoch",  # the trial's own epoch count, carried by its checkpoint
            metric=METRIC,
            mode=MODE,
            max_t=epochs,
            grace_period=sweep.scheduler.grace_period,
            reduction_factor=sweep.scheduler.reduction_factor,
        )
    else:
        inner = FIFOScheduler()
    return PruningScheduler(inner, sweep_key, TrialJudge(log, sweep.protect_top_fraction))
