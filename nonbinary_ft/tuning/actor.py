"""Stage 1: the analysis actor, and the pruning policy that turns its evidence into vetoes.

The actor (a Ray actor on its own resources, started with the search or after it) runs the
analysis of :mod:`nonbinary_ft.analysis` in two steps: the cheap evidence first (features,
fixed-feature probe, transferability scores: a provisional regime from the Fisher score),
then the expensive from-scratch baseline, whose gap decides the regime. It publishes each
step's analysis document; the driver's :class:`AnalysisPolicy` picks them up without ever
blocking Ray Tune's loop and acts on them as a
:class:`~nonbinary_ft.search.regime_policy.RegimePolicy`.

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

import ray

from nonbinary_ft.analysis import AnalysisReport, analyse, extract_features
from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.search.regime_policy import RegimePolicy

__all__ = ["AnalysisRunner", "AnalysisPolicy", "start_analysis_actor", "start_analysis"]

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
        self._started_at: float | None = None

    def run(self) -> dict[str, Any] | None:
        """Cheap evidence, then the scratch baseline; returns the final document."""
        self._started_at = time.time()
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
        document["started_at"], document["published_at"] = self._started_at, time.time()
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


class AnalysisPolicy(RegimePolicy):
    """A :class:`RegimePolicy` fed by the analysis actor, polled without blocking.

    Every call checks (at most every ``poll_s`` seconds, with a zero timeout) whether the
    actor's run has finished; then it adopts the final document and gives the actor's
    resources back. Before that, an outstanding ``status`` call (the actor answers it while
    it runs) brings the cheap evidence in, which the warm start waits for; it does not prune
    unless ``prune_on_provisional`` is set.

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
        veto: bool = True,
        poll_s: float = 1.0,
    ):
        super().__init__(
            None, prune_on_provisional, min_rows, protect_top_fraction, veto, pending=True
        )
        self.actor = actor
        self.run_ref = run_ref
        self.poll_s = poll_s
        self.done = False
        self.error: str | None = None
        self._last_poll = 0.0
        self._status_ref: Any = None

    def refresh(self, wait_s: float = 0.0) -> None:
        """Adopt the actor's answer if it is in (waits at most ``wait_s`` seconds)."""
        now = time.monotonic()
        if self.done or (wait_s == 0 and now - self._last_poll < self.poll_s):
            return
        self._last_poll = now
        ready, _ = ray.wait([self.run_ref], timeout=wait_s)
        if not ready:
            self._poll_cheap_evidence()
            return
        self.done = True
        self.pending = False
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

    def _poll_cheap_evidence(self) -> None:
        """Adopt the actor's first (cheap) document once its ``status`` answer is in."""
        if self._document is not None:
            return
        if self._status_ref is None:
            self._status_ref = self.actor.status.remote()
            return
        ready, _ = ray.wait([self._status_ref], timeout=0)
        if not ready:
            return
        status, self._status_ref = ray.get(ready[0]), None
        if status.get("document") is not None:
            self.update(status["document"])
        elif status.get("done"):
            self.pending = False  # it failed before any evidence: nothing to wait for

    def evidence_pending(self) -> bool:
        """Whether the cheap evidence is still to come (polls the actor)."""
        self.refresh()
        return super().evidence_pending()

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
    # Two calls at once: ``status`` answers while ``run`` works (the runner holds a lock).
    remote = ray.remote(AnalysisRunner).options(num_cpus=cpus, num_gpus=gpus, max_concurrency=2)
    actor = remote.remote(config, str(workdir))
    return actor, actor.run.remote()


def start_analysis(config: ExperimentConfig, workdir: Path) -> AnalysisPolicy | None:
    """Stage 1: start the analysis actor on one trial's resources; its policy prunes the search.

    Returns:
        The policy fed by the actor, or None when ``analysis.in_sweep`` is off.
    """
    if not config.analysis.in_sweep:
        return None
    resources = config.sweep.resources
    actor, run_ref = start_analysis_actor(config, workdir, resources.cpus, resources.gpus)
    logger.info("stage 1: analysis actor started")
    return AnalysisPolicy(
        actor,
        run_ref,
        config.analysis.prune_on_provisional,
        config.analysis.prune_min_rows,
        config.sweep.protect_top_fraction,
        veto=config.analysis.veto,
    )
