"""The evidence policy's side of the search, without Ray: what may run, what is stopped, and why.

A :class:`PruningPolicy` rules regions of the space out (``rules_out``) and hears every trial
result (``observe``). Two decision points obey it, and both live here so that the Ray Tune
adapters (:mod:`nonbinary_ft.tuning.searcher`, :mod:`nonbinary_ft.tuning.scheduler`) and a
replay of recorded curves make the same decisions:

- :func:`screen_suggestion`: a suggestion in a ruled-out region is not started;
- :class:`TrialJudge`: a running trial whose settings are ruled out is stopped at its next
  result, unless it ranks in the top ``protect_top_fraction`` so far (evidence about a region
  is about its typical trial; a strong one is worth finishing). It also notes the
  scheduler's own early stops.

Every decision goes to a :class:`DecisionLog`, which appends it to a JSON-lines file in the
sweep's run folder: the results writer reads the decisions from there, and a resumed sweep
adds to the same file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nonbinary_ft.config.settings import SETTING_NAMES
from nonbinary_ft.results.io import decision_from_document, jsonable
from nonbinary_ft.results.schema import PruningDecision
from nonbinary_ft.vocabulary import DecisionKind, TrialStatus

__all__ = [
    "PruningPolicy",
    "DecisionLog",
    "Verdict",
    "TrialJudge",
    "screen_suggestion",
    "in_top_fraction",
    "settings_of",
]

logger = logging.getLogger(__name__)


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
    Under Ray Tune they are called from the controller loop: keep them fast (an actor handle
    should cache its answer rather than block on a remote call for every result).
    """

    @abstractmethod
    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        """Why ``settings`` are ruled out, or None when they may run.

        Args:
            settings: one trial's settings (the names of ``TrialSettings``).
        """

    def observe(
        self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        """Called with every trial result before the trial is judged (default: ignored).

        Args:
            trial_id: the trial's id.
            settings: that trial's settings.
            metrics: the result it reported (one epoch).
        """
        return None

    def evidence(self) -> Mapping[str, Any] | None:
        """The latest analysis document (cheap evidence or final), or None (default: none)."""
        return None

    def evidence_pending(self) -> bool:
        """Whether cheap evidence is still to come (a warm start waits for it; default: no)."""
        return False


class DecisionLog:
    """A sweep's decisions, in order: in memory, and appended to ``path`` as JSON lines.

    It pickles with the searcher and scheduler that hold it (Ray saves them with the
    experiment); after a resume the copies append to the same file.

    Args:
        path: the JSON-lines file (None: memory only).
        epochs: a trial's full length, for the epochs a decision saves.
        origin: when the sweep started (seconds since the epoch); decision times count from it.
    """

    def __init__(self, path: str | Path | None, epochs: int, origin: float | None = None):
        self.path = None if path is None else Path(path)
        self.epochs = epochs
        self.origin = time.time() if origin is None else origin
        self._recorded: list[PruningDecision] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "epochs": self.epochs, "origin": self.origin}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["epochs"], state["origin"])  # type: ignore[misc]

    def record(
        self,
        kind: DecisionKind,
        reason: str,
        settings: Mapping[str, Any],
        trial_id: str | None = None,
        epoch: int | None = None,
        saves: bool = True,
    ) -> PruningDecision:
        """Log a decision; returns it. Thread-safe (Ray calls hooks from its controller).

        ``saves=False`` for a decision that starts work rather than saving it (a warm start).
        """
        # A sample never started saves every epoch; a stopped trial the epochs it had left.
        saved = self.epochs if epoch is None else max(self.epochs - epoch, 0)
        saved = saved if saves else 0
        decision = PruningDecision(
            kind=kind,
            reason=reason,
            settings=settings_of(settings),
            trial_id=trial_id,
            epoch=epoch,
            time_s=round(max(time.time() - self.origin, 0.0), 3),
            epochs_saved_estimate=float(saved),
        )
        with self._lock:
            self._recorded.append(decision)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as out:
                    out.write(json.dumps(jsonable(decision)) + "\n")
        return decision

    def __len__(self) -> int:
        """Decisions recorded through this copy of the log (in this process)."""
        with self._lock:
            return len(self._recorded)

    def decisions(self) -> list[PruningDecision]:
        """Every decision of the sweep: the file's (all driver sessions), else this copy's."""
        if self.path is None:
            with self._lock:
                return list(self._recorded)
        return self.read(self.path)

    @staticmethod
    def read(path: str | Path) -> list[PruningDecision]:
        """The decisions in a log file; none when it does not exist, torn lines skipped."""
        path = Path(path)
        if not path.is_file():
            return []
        decisions = []
        for line in path.read_text().splitlines():
            try:
                decisions.append(decision_from_document(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                logger.warning("skipping a torn line of %s", path)
        return decisions


def screen_suggestion(
    policy: PruningPolicy | None, settings: Mapping[str, Any], log: DecisionLog
) -> str | None:
    """Why a suggestion must not start (logged as ``pruned_sample``), or None."""
    reason = policy.rules_out(settings_of(settings)) if policy is not None else None
    if reason is not None:
        log.record(DecisionKind.PRUNED_SAMPLE, reason, settings)
        logger.info("not starting %s: %s", settings_of(settings), reason)
    return reason


@dataclass(frozen=True)
class Verdict:
    """How a stopped trial ends: its status, why, and at which epoch."""

    status: TrialStatus
    reason: str
    epoch: int | None


class TrialJudge:
    """Judges running trials by the policy, and keeps the verdicts for their results.

    Args:
        log: where decisions go.
        protect_top_fraction: the share of best trials the policy may not stop.
    """

    def __init__(self, log: DecisionLog, protect_top_fraction: float = 0.0) -> None:
        self.log = log
        self.protect_top_fraction = protect_top_fraction
        self.best: dict[str, float] = {}
        self.verdicts: dict[str, Verdict] = {}

    def judge(
        self,
        policy: PruningPolicy | None,
        trial_id: str,
        settings: Mapping[str, Any],
        result: Mapping[str, Any],
    ) -> str | None:
        """Feed ``result`` to the policy; why the trial must stop now, or None.

        A trial's last epoch is never pruned: it is already paid for.
        """
        settings = settings_of(settings)
        finished = bool(result.get("done")) or result.get("status") != TrialStatus.RUNNING
        accuracy = result.get("val_accuracy")
        if isinstance(accuracy, float | int):
            self.best[trial_id] = max(accuracy, self.best.get(trial_id, accuracy))
        if policy is None:
            return None
        policy.observe(trial_id, settings, result)
        reason = None if finished else policy.rules_out(settings)
        if reason is not None and in_top_fraction(self.best, trial_id, self.protect_top_fraction):
            logger.info(
                "not pruning trial %s (top %.0f%% so far): %s",
                trial_id,
                100 * self.protect_top_fraction,
                reason,
            )
            return None
        if reason is not None:
            self._stop(DecisionKind.PRUNED_TRIAL, reason, settings, trial_id, result.get("epoch"))
            logger.info("pruning trial %s: %s", trial_id, reason)
        return reason

    def note_early_stop(
        self, trial_id: str, settings: Mapping[str, Any], epoch: int | None, reason: str
    ) -> None:
        """Record that the scheduler stopped a running trial."""
        self._stop(DecisionKind.EARLY_STOPPED, reason, settings, trial_id, epoch)

    def _stop(
        self,
        kind: DecisionKind,
        reason: str,
        settings: Mapping[str, Any],
        trial_id: str,
        epoch: int | None,
    ) -> None:
        self.log.record(kind, reason, settings, trial_id, epoch)
        status = kind.trial_status
        assert status is not None  # both kinds that stop a trial have one
        self.verdicts[trial_id] = Verdict(status, reason, epoch)

    def stamp(self, trial_id: str, result: dict[str, Any]) -> None:
        """Write a stopped trial's ending into the result that stopped it (in place)."""
        verdict = self.verdicts.get(trial_id)
        if verdict is None or verdict.epoch not in (None, result.get("epoch")):
            return
        result["status"] = str(verdict.status)
        result["prune_reason"] = verdict.reason
        result["done"] = True

    def get_state(self) -> dict[str, Any]:
        """The best accuracy per trial and the verdicts (saved with the experiment)."""
        return {"best": dict(self.best), "verdicts": dict(self.verdicts)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.best = dict(state["best"])
        self.verdicts = dict(state.get("verdicts", {}))
