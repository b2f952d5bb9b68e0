"""The sweep: stage 2 (the search) with stage 1 beside it or after it, then stage 3.

:func:`run_sweep` is what ``nbft sweep`` runs. It plans and checks everything first (no Ray
until the sweep file is known to be good), opens the sweep's MLflow parent run, connects to
the cluster at ``RAY_ADDRESS`` or starts a local one, and runs the search. The analysis
actor (stage 1) starts with the search when the search acts on its evidence (its policy is
what the searcher and the scheduler consult; a caller's own ``policy`` replaces it), else
once the search is over, so that the search's first trials have every worker. Then it
re-runs the top settings with each seed on the test split (stage 3), and publishes the
results and the report. ``resume=True`` restores both stages from storage.

A trial's result takes one path: Ray's ``ResultGrid`` -> :class:`TrialResult`
(:mod:`.collect`) -> :class:`SweepResults` (:mod:`.publish`) -> the run folder's files
(:func:`~nonbinary_ft.results.io.save_results`) -> the report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.tune.schedulers import FIFOScheduler

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.history.record import history_tags
from nonbinary_ft.history.store import (
    read_prior,
    read_tables,
    read_user_store,
    record_sweep,
    unique,
)
from nonbinary_ft.reporting.verdict import build_verdict, table1_markdown
from nonbinary_ft.results import (
    FinalEntry,
    Missing,
    PruningDecision,
    SweepResults,
    TrialResult,
    jsonable,
)
from nonbinary_ft.search.algorithms import get_algorithm
from nonbinary_ft.search.policy import DecisionLog, PruningPolicy
from nonbinary_ft.search.warm_start import PastSweep
from nonbinary_ft.tracking import SweepTracker
from nonbinary_ft.tracking.history import read_history
from nonbinary_ft.tracking.runs import runs_page
from nonbinary_ft.tuning.actor import start_analysis
from nonbinary_ft.tuning.collect import final_probabilities, trial_results
from nonbinary_ft.tuning.datasets import dataset_inputs
from nonbinary_ft.tuning.final import (
    binary_baseline,
    final_entries,
    final_points,
    ranked,
)
from nonbinary_ft.tuning.model_export import ModelExport, export_final_models
from nonbinary_ft.tuning.plan import StageOneTiming, SweepPlan, plan_sweep
from nonbinary_ft.tuning.preflight import preflight
from nonbinary_ft.tuning.publish import (
    PublishedResults,
    analysis_results,
    publish_results,
    sweep_results,
)
from nonbinary_ft.tuning.scheduler import create_scheduler
from nonbinary_ft.tuning.searcher import GridSearcher, create_searcher
from nonbinary_ft.tuning.session import close_session, open_session
from nonbinary_ft.tuning.stages import StageRunner, check_resume, connect_ray
from nonbinary_ft.tuning.trainable import TrainableOptions
from nonbinary_ft.vocabulary import Stage

__all__ = ["DECISIONS_FILE", "SweepRun", "run_sweep"]

logger = logging.getLogger(__name__)

DECISIONS_FILE = "decisions.jsonl"
"""The sweep's decision log in its run folder (JSON lines, appended by every driver)."""


@dataclass(frozen=True)
class SweepRun:
    """A finished sweep: its results, where they are, and the final runs' own trials."""

    name: str
    storage: str
    tracking_uri: str
    mlflow_experiment: str
    parent_run_id: str
    results: SweepResults
    final_trials: tuple[TrialResult, ...] = ()
    published: PublishedResults | None = None
    models: ModelExport | None = None
    runs_page: str | None = None

    @property
    def trials(self) -> tuple[TrialResult, ...]:
        """The search trials."""
        return tuple(self.results.trials) if isinstance(self.results.trials, tuple) else ()

    @property
    def finals(self) -> tuple[FinalEntry, ...]:
        """Stage 3's entries, one per label."""
        return tuple(self.results.final) if isinstance(self.results.final, tuple) else ()

    @property
    def decisions(self) -> tuple[PruningDecision, ...]:
        """Every pruning decision of the sweep."""
        return tuple(self.results.pruning) if isinstance(self.results.pruning, tuple) else ()

    @property
    def best(self) -> TrialResult | None:
        """The completed search trial with the highest validation accuracy."""
        top = ranked(self.trials)
        return top[0] if top else None

    def counts(self) -> dict[str, int]:
        """Search trials by status."""
        return dict(Counter(str(trial.status) for trial in self.trials))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``nbft sweep --json`` prints)."""
        best = self.best
        return jsonable(
            {
                "name": self.name,
                "storage": self.storage,
                "mlflow": {
                    "tracking_uri": self.tracking_uri,
                    "experiment": self.mlflow_experiment,
                    "parent_run_id": self.parent_run_id,
                },
                "counts": self.counts(),
                "best_settings": best.settings if best else None,
                "best_val_accuracy": best.val_accuracy if best else None,
                # One per rank: a top setting that is also the default is listed once here.
                "finals": list({entry.rank: entry for entry in reversed(self.finals)}.values()),
                "trials": self.trials,
                "final_trials": self.final_trials,
                "decisions": self.decisions,
                "report": self.published,
                "runs_page": self.runs_page,
                "model_uri": self.models.uri if self.models else None,
                "logged_models": self.models.logged if self.models else {},
            }
        )


def _open_tracker(
    config: ExperimentConfig, plan: SweepPlan, source: str | Path | None, resume: bool
) -> SweepTracker:
    """The sweep's MLflow side, its parent run open (reopened on resume)."""
    artifacts = None
    if config.sweep.mlflow.tracking_uri is None:
        artifacts = plan.storage.mlflow_artifacts
        if plan.storage.is_s3 and plan.storage.endpoint_url:
            # MLflow's S3 artifact store reads its endpoint from the environment only.
            os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", plan.storage.endpoint_url)
    tracker = SweepTracker(plan.tracking_uri, plan.mlflow_experiment, plan.sweep_key, artifacts)
    tracker.open_parent(config.name, resume, source)
    if not resume:
        tracker.log_inputs(source, plan.to_dict(), plan.spaces_yaml())
    return tracker


def _history(config: ExperimentConfig, plan: SweepPlan, parent_run_id: str) -> list[PastSweep]:
    """The past sweeps an algorithm that learns from them reads: the user's store, the
    tracking server's, the sweep file's tables, then the prior shipped with the package."""
    search = config.sweep.search
    if not get_algorithm(search.algorithm).learns_from_history:
        return []
    history = read_user_store(search.history_store) if search.user_store else []
    history += read_history(search.history_uri or plan.tracking_uri, exclude_run=parent_run_id)
    history += read_tables(search.history_tables)
    history += read_prior() if search.prior else []
    history = unique(history, exclude=parent_run_id)
    origins = Counter(past.origin.split(" ")[0] for past in history)
    logger.info("history: %d past sweeps (%s)", len(history), dict(origins))
    return history


def _start_stage_one(
    config: ExperimentConfig, plan: SweepPlan, policy: Any, when: StageOneTiming
) -> Any:
    """Stage 1's actor, started now if the sweep runs it ``when`` ('with_search': its policy
    is what the search consults; 'after_search': for the report, beside stage 3). None at
    any other time, or when the caller brought its own ``policy``."""
    if policy is not None or plan.stage_one != when:
        return None
    return start_analysis(config, plan.storage.local_dir / "analysis")


def _search(
    runner: StageRunner, plan: SweepPlan, config: ExperimentConfig, resume: bool, options: Any
) -> list[TrialResult]:
    """Stage 2: the search (its searcher and scheduler are restored from storage on resume)."""
    searcher = scheduler = None
    if not resume:
        searcher = create_searcher(
            config.sweep,
            plan.sweep_key,
            runner.decisions,
            space=plan.spaces[0] if plan.algorithm != "grid" else None,
            grid=plan.grid,
            num_layers=plan.num_layers,
            base=config.settings,
            history=_history(config, plan, runner.parent_run_id),
            model=config.model.name,
        )
        scheduler = create_scheduler(
            config.sweep, config.train.epochs, plan.sweep_key, runner.decisions
        )
    grid = runner.run(Stage.SEARCH, searcher, scheduler, plan.num_trials, resume, options)
    return trial_results(grid, Stage.SEARCH, runner.decisions.origin)


def _final(
    runner: StageRunner,
    config: ExperimentConfig,
    search: list[TrialResult],
    resume: bool,
    options: TrainableOptions,
    tracker: SweepTracker,
) -> tuple[list[FinalEntry], list[TrialResult], ModelExport | None]:
    """Stage 3: the top settings and the binary baseline, with every seed, on the test split;
    the recommended settings' models into MLflow."""
    final = config.sweep.final
    baseline = binary_baseline(search, config)
    points = final_points(search, final.top_n, final.seeds, baseline.candidates)
    if not points:
        if final.top_n > 0:
            logger.warning("no search trial completed: no final runs")
        return [], [], None
    final_options = dataclasses.replace(options, final=True)
    grid = runner.run(
        Stage.FINAL, GridSearcher(points), FIFOScheduler(), len(points), resume, final_options
    )
    trials = trial_results(grid, Stage.FINAL, runner.decisions.origin)
    entries = final_entries(trials, search, final_probabilities(grid), baseline, final.seeds)
    models = export_final_models(
        grid, config, tracker.tracking_uri, tracker.trial_runs(Stage.FINAL),
        tracker.parent_run_id or "",
    )  # fmt: skip
    return entries, trials, models


def _publish(
    config: ExperimentConfig,
    source: str | Path | None,
    plan: SweepPlan,
    tracker: SweepTracker,
    decisions: DecisionLog,
    analysis: Any,
    stages: tuple[list[TrialResult], list[FinalEntry], list[TrialResult]],
) -> SweepRun:
    """The sweep's results: assembled, summarised on the parent run, written and reported.

    Args:
        stages: the search trials, stage 3's entries, stage 3's own trials and its models.
    """
    search, finals, final_trials, models = stages
    parent_run_id = tracker.parent_run_id or ""
    location = {
        "tracking_uri": plan.tracking_uri,
        "experiment": plan.mlflow_experiment,
        "parent_run_id": parent_run_id,
    }
    results = sweep_results(
        config, source, analysis_results(analysis), search, decisions.decisions(), finals,
        (decisions.origin, time.time()), location,
    )  # fmt: skip
    run = SweepRun(
        config.name, plan.storage.root, plan.tracking_uri, plan.mlflow_experiment,
        parent_run_id, results, tuple(final_trials), models=models,
        runs_page=runs_page(plan.tracking_uri, tracker.experiment_id),
    )  # fmt: skip
    tracker.log_summary(run.to_dict())
    _describe(tracker, results)
    tags = history_tags(results, config.model.name)
    if tags:  # what a later sweep that learns from past sweeps starts from
        tracker.set_tags(parent_run_id, tags)
        if config.sweep.search.user_store:
            record_sweep(tags, config.name, parent_run_id, config.sweep.search.history_store)
    published = publish_results(plan.storage.local_dir, results, plan.tracking_uri, parent_run_id)
    return dataclasses.replace(run, published=published)


def _describe(tracker: SweepTracker, results: SweepResults) -> None:
    """The verdict as the parent run's description; table 1 on an ``analysis`` child run."""
    tracker.describe(build_verdict(results).markdown())
    if not isinstance(results.analysis, Missing):
        document = results.analysis.to_document()
        regime = str((document.get("regime") or {}).get("label", "unknown"))
        table1 = document.get("table1") or {}
        tracker.log_analysis(table1, regime, table1_markdown(table1))


def run_sweep(
    config: ExperimentConfig,
    *,
    source: str | Path | None = None,
    resume: bool = False,
    policy: PruningPolicy | None = None,
    progress: Callable[[Any], None] | None = None,
    options: TrainableOptions | None = None,
    on_checked: Callable[[], None] | None = None,
) -> SweepRun:
    """Run (or resume) a sweep: analysis and search, then the seeded final runs, then publish.

    Args:
        config: the validated sweep file.
        source: its path (relative space paths; error messages; logged to MLflow).
        resume: continue the sweep stored at ``sweep.storage`` instead of starting one.
        policy: the pruning policy; None starts stage 1's analysis actor (with the search or
            after it: ``plan.stage_one``).
        progress: called with each :class:`~nonbinary_ft.tuning.progress.SweepProgress`.
        options: the trainable's test hooks.
        on_checked: called once the sweep file, the plan and the preflight have passed.

    Raises:
        ConfigError: a bad sweep file, --resume with nothing to resume, or a new sweep where
            one already exists (all before Ray starts).
        ray.tune.TuneError: the sweep itself failed.
    """
    plan = plan_sweep(config, source)
    check_resume(plan, resume)
    preflight(config, plan.tracking_uri, plan.storage, source)
    if on_checked is not None:
        on_checked()
    options = options or TrainableOptions()
    plan.storage.local_dir.mkdir(parents=True, exist_ok=True)
    tracker = _open_tracker(config, plan, source, resume)
    session = open_session(plan.sweep_key, policy, progress)
    decisions = DecisionLog(
        plan.storage.local_dir / DECISIONS_FILE, config.train.epochs, tracker.started_at()
    )
    owns_ray, status = connect_ray(), "FAILED"
    try:
        analysis = _start_stage_one(config, plan, policy, "with_search")
        if analysis is not None:
            session.policy = analysis
        datasets = dataset_inputs(config)
        runner = StageRunner(plan, config, tracker.parent_run_id or "", decisions, datasets)
        search = _search(runner, plan, config, resume, options)
        analysis = analysis or _start_stage_one(config, plan, policy, "after_search")
        stages = (search, *_final(runner, config, search, resume, options, tracker))
        run = _publish(config, source, plan, tracker, decisions, analysis, stages)
        status = "FINISHED"
        return run
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.finish(status)
        close_session(plan.sweep_key)
        if owns_ray:
            ray.shutdown()
