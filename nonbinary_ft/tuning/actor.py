"""Stage 1: the analysis actor, and the pruning policy that turns its evidence into vetoes.

The actor (a Ray actor that lives for the whole sweep, with its own resources) runs the
analysis of :mod:`nonbinary_ft.analysis` in two steps: the cheap evidence first (features,
fixed-feature probe, transferability scores: a provisional regime from the Fisher score),
then the expensive from-scratch baseline, whose gap decides the regime. It publishes each
step's analysis document; the driver's :class:`AnalysisPolicy` picks them up without ever
blocking Ray Tune's loop, and rules out every setting that goes against the regime on
several of the paper's table-7 rows (re-initialised layers, L2-SP, low layers at a low LR),
with the evidence in the reason.

Provisional (Fisher-only) regimes do not prune unless ``analysis.prune_on_provisional`` is
set: the paper found the Fisher score a weak predictor, and a wrong veto loses the optimum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nonbinary_ft.analysis import AnalysisReport, analyse, extract_features
from nonbinary_ft.analysis.recommend import TABLE7_ROWS, row_answers, rows_against
from nonbinary_ft.config import ExperimentConfig, TrialSettings
from nonbinary_ft.tuning.pruning import PruningPolicy, in_top_fraction

__all__ = [
    "AnalysisRunner",
    "RegimePolicy",
    "AnalysisPolicy",
    "start_analysis_actor",
]

logger = logging.getLogger(__name__)


class AnalysisRunner:
    """Runs the analysis in two steps and keeps the latest analysis document.

    Ray-free, so that it is tested directly; :func:`start_analysis_actor` runs it as an actor.

    Args:
        config: the sweep's experiment config (``analysis`` sets budgets and thresholds).
        workdir: where the from-scratch baseline keeps its checkpoint.
    """

    def __init__(self, config: ExperimentConfig, workdir: str | Path) -> None:
        self.config = config
        self.workdir = Path(workdir)
        self._lock = threading.Lock()
        self._document: dict[str, Any] | None = None
        self._error: str | None = None
        self._done = False

    def run(self) -> dict[str, Any] | None:
        """Cheap evidence, then the scratch baseline; returns the final document."""
        try:
            features = extract_features(self.config, progress=False)
            self._publish(analyse(self.config, self.workdir, scratch=False, features=features))
            if self.config.analysis.scratch.enabled:
                self._publish(analyse(self.config, self.workdir, scratch=True, features=features))
        except Exception as error:  # the sweep goes on without pruning; the report says why
            logger.exception("analysis stage failed")
            with self._lock:
                self._error = f"{type(error).__name__}: {error}"
        finally:
            with self._lock:
                self._done = True
        return self.document()

    def _publish(self, report: AnalysisReport) -> None:
        document = report.to_dict()
        document["published_at"] = time.time()
        with self._lock:
            self._document = document
        logger.info("analysis: %s (%s)", report.regime.label, report.regime.rule)

    def document(self) -> dict[str, Any] | None:
        """The latest analysis document (``analysis.json``), or None before the first step."""
        with self._lock:
            return self._document

    def status(self) -> dict[str, Any]:
        """The latest document, whether the analysis is done, and its error if it failed."""
        with self._lock:
            return {"document": self._document, "done": self._done, "error": self._error}


class RegimePolicy(PruningPolicy):
    """Rules out settings that go against the regime on table 7's rows, given an analysis document.

    The rows are :data:`~nonbinary_ft.analysis.recommend.TABLE7_ROWS` (more layers
    re-initialised, L2-SP, low layers at a low LR), each answered by the regime's recommended
    settings. A setting is ruled out when it goes against at least ``min_rows`` of them.
    Learning rates stay open: the regime says 'low' or 'high' relative to a base, and the
    search is better placed than a fixed bound to find the value.

    The sweep's own results overrule the regime: once a trial that answers the rows the same
    way ranks in the top ``protect_top_fraction`` of the trials seen (``observe``), settings
    like it are no longer ruled out. The regime describes typical settings; a strong trial in
    the region is direct evidence about this target.

    Args:
        document: an analysis document (:meth:`AnalysisReport.to_dict`), or None (no veto).
        prune_on_provisional: also prune on a provisional (Fisher-only) regime.
        min_rows: rows a setting must go against to be ruled out (1 to 3).
        protect_top_fraction: the share of best trials whose row answers stay open.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None,
        prune_on_provisional: bool = False,
        min_rows: int = 2,
        protect_top_fraction: float = 0.0,
    ) -> None:
        self.prune_on_provisional = prune_on_provisional
        self.min_rows = min_rows
        self.protect_top_fraction = protect_top_fraction
        self._recommended: TrialSettings | None = None
        self._because = ""
        self._best: dict[str, float] = {}
        self._answers: dict[str, dict[str, bool]] = {}
        self.update(document)

    def update(self, document: Mapping[str, Any] | None) -> None:
        """Adopt a new analysis document (evidence arrived)."""
        self._document = document
        self._recommended = None
        if not document:
            return
        regime = document["regime"]
        if regime["label"] == "unclear":
            return
        if regime["provisional"] and not self.prune_on_provisional:
            return
        self._recommended = TrialSettings.model_validate(document["recommendation"]["settings"])
        # The gap decides once it is known, the Fisher score before (analysis.regime).
        decided = (
            f"gap {regime['gap']:+.3f}"
            if regime["gap"] is not None
            else f"Fisher {regime['fisher']:.3g}"
        )
        self._because = f"{regime['label']} ({decided})"

    def document(self) -> Mapping[str, Any] | None:
        """The analysis document the policy currently acts on."""
        return self._document

    @property
    def active(self) -> bool:
        """Whether the current evidence rules anything out."""
        return self._recommended is not None

    def observe(
        self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        """Keep each trial's best validation accuracy and its answers on table 7's rows."""
        accuracy = metrics.get("val_accuracy")
        if isinstance(accuracy, float | int):
            self._best[trial_id] = max(accuracy, self._best.get(trial_id, accuracy))
            self._answers[trial_id] = row_answers(TrialSettings.model_validate(dict(settings)))

    def _strong_trial_like(self, settings: TrialSettings) -> str | None:
        """A trial in the top fraction so far that answers table 7's rows like ``settings``."""
        answers = row_answers(settings)
        for trial_id, theirs in self._answers.items():
            if theirs == answers and in_top_fraction(
                self._best, trial_id, self.protect_top_fraction
            ):
                return trial_id
        return None

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        """The table-7 rows the settings go against, with the evidence, or None."""
        if self._recommended is None:
            return None
        trial = TrialSettings.model_validate(dict(settings))
        against = rows_against(self._recommended, trial)
        if len(against) < self.min_rows:
            return None
        strong = self._strong_trial_like(trial)
        if strong is not None:
            logger.info(
                "not ruling out %s: trial %s, alike on table 7's rows, is in the top %.0f%%",
                dict(settings),
                strong,
                100 * self.protect_top_fraction,
            )
            return None
        return (
            f"against table 7 on {len(against)} of {len(TABLE7_ROWS)} rows: "
            f"{'; '.join(against)}; the weights {self._because}"
        )


class AnalysisPolicy(RegimePolicy):
    """A :class:`RegimePolicy` fed by the analysis actor, polled without blocking.

    Every call checks (at most every ``poll_s`` seconds, with a zero timeout) whether the
    actor's run has finished; then it adopts the final document and gives the actor's
    resources back. Until then nothing is ruled out: the provisional evidence does not prune
    by default, and waiting on the final answer alone keeps the driver free of remote calls.

    Args:
        actor: the actor handle (killed once its answer is in).
        run_ref: the object ref of the actor's ``run()``.
        prune_on_provisional, min_rows, protect_top_fraction: passed to
            :class:`RegimePolicy`.
        poll_s: minimum seconds between two checks.
    """

    def __init__(
        self,
        actor: Any,
        run_ref: Any,
        prune_on_provisional: bool = False,
        min_rows: int = 2,
        protect_top_fraction: float = 0.0,
        poll_s: float = 1.0,
    ):
        super().__init__(None, prune_on_provisional, min_rows, protect_top_fraction)
        self.actor = actor
        self.run_ref = run_ref
        self.poll_s = poll_s
        self.done = False
        self.error: str | None = None
        self._last_poll = 0.0

    def refresh(self, wait_s: float = 0.0) -> None:
        """Adopt the actor's answer if it is in (waits at most ``wait_s`` seconds)."""
        import ray

        now = time.monotonic()
        if self.done or (wait_s == 0 and now - self._last_poll < self.poll_s):
            return
        self._last_poll = now
        ready, _ = ray.wait([self.run_ref], timeout=wait_s)
        if not ready:
            return
        self.done = True
        try:
            self.update(ray.get(self.run_ref))
        except Exception as error:  # a dead actor: the sweep goes on unpruned
            self.error = f"{type(error).__name__}: {error}"
            logger.warning("analysis stage failed: %s", self.error)
        ray.kill(self.actor)  # the evidence is final: its CPU/GPU go back to the trials
        regime = (self._document or {}).get("regime", {})
        logger.info(
            "stage 1 done: %s (%s); pruning %s",
            regime.get("label"),
            regime.get("rule"),
            "on" if self.active else "off",
        )

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        """As :class:`RegimePolicy`, once the actor's evidence is in."""
        self.refresh()
        return super().rules_out(settings)

    def document(self, wait: bool = True) -> Mapping[str, Any] | None:
        """The analysis document; with ``wait``, once the analysis has finished.

        The sweep calls this at its end so that its report carries the final evidence (the
        from-scratch baseline can outlast a short search).
        """
        while wait and not self.done:
            self.refresh(wait_s=5.0)
        return self._document


def start_analysis_actor(
    config: ExperimentConfig, workdir: str | Path, cpus: float, gpus: float
) -> tuple[Any, Any]:
    """Start the analysis actor and its run; returns (actor handle, ref of the final document).

    The actor runs on its own resources (one trial's share) for the whole analysis.
    """
    import ray

    remote = ray.remote(AnalysisRunner).options(num_cpus=cpus, num_gpus=gpus)
    actor = remote.remote(config, str(workdir))
    return actor, actor.run.remote()
