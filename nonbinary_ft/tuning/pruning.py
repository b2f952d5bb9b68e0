"""Pruning: a policy that rules regions of the space out, and the Ray Tune hooks that obey it.

The analysis stage (DESIGN.md) narrows the space as evidence arrives. It plugs in here as a
:class:`PruningPolicy`: one method, ``rules_out(settings)``, returning the reason a setting is
ruled out (or None), and an optional ``observe`` hook fed every trial result. Two hooks obey it:

- :class:`PruningSearcher` wraps the search algorithm: a suggestion in a ruled-out region is
  not started (the inner searcher is told it was pruned) and another one is drawn;
- :class:`PruningScheduler` wraps the scheduler: a running trial whose settings become ruled
  out is stopped at its next result. It also records the inner scheduler's (ASHA's) stops.

Ray Tune saves the searcher's and the callbacks' state with the experiment, but not the
scheduler's: :class:`SchedulerStateCallback` carries it, so that ASHA's rungs and the
protected ranking survive ``Tuner.restore``.

Every decision is a :class:`PruneDecision` appended to the sweep's live decision log (see
:mod:`nonbinary_ft.tuning.live`); :class:`PruneStampCallback` writes the status and reason of
stopped trials into their results, so that they reach Ray's experiment state and MLflow.
"""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.tuning import live

__all__ = [
    "PruningPolicy",
    "PruneDecision",
    "PruningSearcher",
    "PruningScheduler",
    "PruneStampCallback",
    "SchedulerStateCallback",
    "in_top_fraction",
    "settings_of",
]

logger = logging.getLogger(__name__)

SETTING_NAMES = frozenset(TrialSettings.model_fields)

DecisionKind = Literal["pruned_sample", "pruned_trial", "early_stopped"]
STATUS_OF_KIND = {"pruned_trial": "pruned", "early_stopped": "early_stopped"}


def settings_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial settings in a trial's config (other keys, such as a final run's seed, dropped)."""
    return {name: value for name, value in config.items() if name in SETTING_NAMES}


def in_top_fraction(best: Mapping[str, float], trial_id: str, fraction: float) -> bool:
    """Whether ``trial_id``'s best accuracy is in the top ``fraction`` of ``best`` (ties in).

    Never with fewer than two trials to rank, or a fraction of 0.
    """
    if fraction <= 0 or len(best) < 2 or trial_id not in best:
        return False
    ranked = sorted(best.values(), reverse=True)
    keep = max(1, int(len(ranked) * fraction))
    return best[trial_id] >= ranked[keep - 1]


class PruningPolicy(ABC):
    """Decides which settings are no longer worth sampling or running.

    Implementations may change their mind as evidence arrives (``observe``); they are asked
    again at every decision point, so a region ruled out late stops its running trials too.
    They are called in the driver, from Ray Tune's controller loop: keep them fast (an actor
    handle should cache its answer rather than block on a remote call for every result).
    """

    @abstractmethod
    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        """Why ``settings`` are ruled out, or None when they may run.

        Args:
            settings: one trial's settings (the names of :class:`TrialSettings`).
        """

    def observe(
        self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        """Called with every trial result before the trial is judged (default: ignored).

        Args:
            trial_id: Ray Tune's trial id.
            settings: that trial's settings.
            metrics: the result it reported (one epoch).
        """
        return None


@dataclass(frozen=True)
class PruneDecision:
    """One decision to not start, or to stop, a trial.

    Attributes:
        kind: 'pruned_sample' (a suggestion never started), 'pruned_trial' (a running trial
            stopped by the policy) or 'early_stopped' (stopped by the scheduler, e.g. ASHA).
        reason: why, in words.
        settings: the settings concerned.
        trial_id: the trial (None for a suggestion that never became one).
        epoch: the epoch at which a running trial was stopped.
        time: when (seconds since the epoch).
    """

    kind: DecisionKind
    reason: str
    settings: dict[str, Any]
    trial_id: str | None = None
    epoch: int | None = None
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


class PruningSearcher(Searcher):
    """A searcher wrapper that never starts a trial the pruning policy rules out.

    Args:
        searcher: the search algorithm to wrap (it must already know its metric and mode).
        sweep_key: the key under which the sweep's live policy is registered.
        max_draws: suggestions drawn per trial before giving up; when every one of them is
            ruled out the search is declared finished rather than looping forever.
    """

    def __init__(self, searcher: Searcher, sweep_key: str, max_draws: int = 200) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.sweep_key = sweep_key
        self.max_draws = max_draws
        # Ray's trial id -> the id the inner searcher knows it by (they differ after a redraw).
        self._inner_ids: dict[str, str] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Forwarded to the wrapped searcher."""
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        """The next suggestion that the policy does not rule out (see the class docstring)."""
        sweep = live.lookup(self.sweep_key)
        for draw in range(self.max_draws):
            inner_id = trial_id if draw == 0 else f"{trial_id}~{draw}"
            config = self.searcher.suggest(inner_id)
            if config is None or config == Searcher.FINISHED:
                return config
            reason = sweep.policy.rules_out(settings_of(config)) if sweep.policy else None
            if reason is None:
                self._inner_ids[trial_id] = inner_id
                return config
            sweep.record(
                PruneDecision("pruned_sample", reason, settings_of(config), time=time.time())
            )
            logger.info("not starting %s: %s", settings_of(config), reason)
            # Tell the inner searcher this point was pruned, so that TPE learns from it.
            self.searcher.on_trial_complete(inner_id, result=None, error=False)
        logger.warning(
            "the last %d suggestions were all ruled out by the pruning policy: the search "
            "stops here (the space it left open looks exhausted)",
            self.max_draws,
        )
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Forwarded to the wrapped searcher under its own id for the trial."""
        self.searcher.on_trial_result(self._inner_ids.get(trial_id, trial_id), result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Forwarded to the wrapped searcher under its own id for the trial."""
        inner_id = self._inner_ids.pop(trial_id, trial_id)
        self.searcher.on_trial_complete(inner_id, result=result, error=error)

    def get_state(self) -> dict[str, Any]:
        """The id map (Ray saves a wrapper's state this way; the inner searcher saves its own)."""
        return {"inner_ids": dict(self._inner_ids)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (on --resume)."""
        self._inner_ids = dict(state.get("inner_ids", {}))


class PruningScheduler(TrialScheduler):
    """A scheduler wrapper that stops running trials the pruning policy rules out.

    It feeds every result to the policy (``observe``), asks the wrapped scheduler first, and
    records why each trial is stopped early: by the policy ('pruned_trial') or by the wrapped
    scheduler ('early_stopped'). A trial's last epoch is never pruned: it is already paid for.

    A trial whose best validation accuracy so far is in the top ``protect_top_fraction`` of
    all trials' is not stopped by the policy: evidence about a region is about its typical
    trial, and a strong one is worth finishing.

    Args:
        scheduler: the scheduler to wrap (ASHA, or FIFO for none).
        sweep_key: the key under which the sweep's live policy is registered.
        time_attr: the result key that counts epochs.
        protect_top_fraction: the share of best trials the policy may not stop.
    """

    def __init__(
        self,
        scheduler: TrialScheduler,
        sweep_key: str,
        time_attr: str = "epoch",
        protect_top_fraction: float = 0.0,
    ):
        super().__init__()
        self.scheduler = scheduler
        self.sweep_key = sweep_key
        self.time_attr = time_attr
        self.protect_top_fraction = protect_top_fraction
        self._best: dict[str, float] = {}

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
        sweep = live.lookup(self.sweep_key)
        settings = settings_of(trial.config)
        decision = self.scheduler.on_trial_result(tune_controller, trial, result)
        finished = bool(result.get("done")) or result.get("status") != "running"
        accuracy = result.get("val_accuracy")
        if isinstance(accuracy, float | int):
            self._best[trial.trial_id] = max(accuracy, self._best.get(trial.trial_id, accuracy))
        if sweep.policy is not None:
            sweep.policy.observe(trial.trial_id, settings, result)
            reason = None if finished else sweep.policy.rules_out(settings)
            protected = in_top_fraction(self._best, trial.trial_id, self.protect_top_fraction)
            if reason is not None and protected:
                logger.info(
                    "not pruning trial %s (top %.0f%% so far): %s",
                    trial.trial_id,
                    100 * self.protect_top_fraction,
                    reason,
                )
                reason = None
            if reason is not None:
                sweep.record(
                    PruneDecision(
                        "pruned_trial",
                        reason,
                        settings,
                        trial.trial_id,
                        result.get(self.time_attr),
                        time.time(),
                    )
                )
                logger.info("pruning trial %s: %s", trial.trial_id, reason)
                return TrialScheduler.STOP
        if decision == TrialScheduler.STOP and not finished:
            name = type(self.scheduler).__name__
            sweep.record(
                PruneDecision(
                    "early_stopped",
                    f"{name}: {self.scheduler.metric} below the cut-off of its rung at "
                    f"{self.time_attr} {result.get(self.time_attr)}",
                    settings,
                    trial.trial_id,
                    result.get(self.time_attr),
                    time.time(),
                )
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
        """The wrapped scheduler (its rungs and trial records) and the best accuracy per trial."""
        return {"scheduler": copy.deepcopy(self.scheduler), "best": dict(self._best)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.scheduler = state["scheduler"]
        self._best = dict(state["best"])


class PruneStampCallback(Callback):
    """Writes 'pruned' / 'early_stopped' and the reason into a stopped trial's last result.

    Ray Tune lets callbacks edit a result before it is stored; the scheduler decides on a
    result before the callbacks see it, so the stamp lands on the very result that stopped the
    trial and travels with it into the experiment state, ``ResultGrid`` and MLflow. It must
    come before the MLflow callback in ``RunConfig.callbacks``.

    Args:
        sweep_key: the key under which the sweep's live decision log is registered.
    """

    def __init__(self, sweep_key: str) -> None:
        self.sweep_key = sweep_key

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        """Stamp the result if a decision about this trial was just made."""
        for decision in reversed(live.lookup(self.sweep_key).decisions_since(0)):
            if decision.trial_id == trial.trial_id and decision.kind in STATUS_OF_KIND:
                if decision.epoch is None or decision.epoch == result.get("epoch"):
                    result["status"] = STATUS_OF_KIND[decision.kind]
                    result["prune_reason"] = decision.reason
                    result["done"] = True
                break


class SchedulerStateCallback(Callback):
    """Saves a :class:`PruningScheduler`'s state with the experiment and restores it on resume.

    Ray Tune pickles the scheduler once, when the experiment starts, and checkpoints only the
    searcher and the callbacks after that; without this callback a resumed sweep's ASHA would
    start from empty rungs. The callback and the scheduler are pickled together in the
    experiment's ``tuner.pkl``, so after ``Tuner.restore`` this callback still points at the
    scheduler the restored controller uses.

    Args:
        scheduler: the sweep's scheduler.
    """

    def __init__(self, scheduler: PruningScheduler) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any]:
        """The scheduler's state (saved with each experiment checkpoint)."""
        return {"scheduler": self.scheduler.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put the saved state back into the scheduler (on --resume)."""
        self.scheduler.set_state(state["scheduler"])
