"""The sweep: stage 2 (Ray Tune over the space) then stage 3 (best settings x seeds, test split).

:func:`run_sweep` is what ``nbft sweep`` runs. It plans and checks everything first (no Ray
until the sweep file is known to be good), connects to the cluster at ``RAY_ADDRESS`` or starts
a local one, opens the sweep's MLflow parent run, runs the search, then re-runs the top N
settings with each seed and reports test accuracy mean +- std and the seed ensemble's
accuracy (softmax averaged over the seeds' models).

Stage 1, the analysis, runs in an actor (:mod:`nonbinary_ft.tuning.actor`) beside the search;
its :class:`~nonbinary_ft.tuning.actor.AnalysisPolicy` is the
:class:`~nonbinary_ft.tuning.pruning.PruningPolicy` that the searcher and the scheduler consult
on every suggestion and result. A caller's own ``policy`` replaces it.

``resume=True`` restores both stages with ``Tuner.restore``: finished trials keep their results
and are not run again, unfinished ones continue from their last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.tuning import live
from nonbinary_ft.tuning.plan import SweepPlan, plan_sweep
from nonbinary_ft.tuning.pruning import PruneDecision, PruningPolicy, settings_of

if TYPE_CHECKING:
    from nonbinary_ft.tuning.actor import AnalysisPolicy

__all__ = [
    "SNAPSHOT_PERIOD_S",
    "TrialSummary",
    "FinalSummary",
    "SweepResult",
    "connect_ray",
    "run_sweep",
    "ensemble_accuracy",
]

logger = logging.getLogger(__name__)

SNAPSHOT_PERIOD_S = 2
"""Seconds between Ray Tune's snapshots of the experiment state (its default is at least 10).

A killed driver loses what happened after the last snapshot; a short period keeps that small
(trials that finished in the gap report their stored final result again without training)."""


@dataclass(frozen=True)
class TrialSummary:
    """One trial of a stage, as the sweep ended."""

    trial_id: str
    stage: str
    settings: dict[str, Any]
    status: str
    epochs: int
    val_accuracy: float | None
    test_accuracy: float | None = None
    prune_reason: str | None = None
    node_id: str | None = None
    seed: int | None = None
    rank: int | None = None


@dataclass(frozen=True)
class FinalSummary:
    """Stage 3 for one of the top settings: its seeds' test accuracies and their ensemble.

    Rank 0 is the sweep file's own ``settings:`` (the binary default), re-run with the same
    seeds as the baseline, unless it is one of the top settings already.
    """

    rank: int
    settings: dict[str, Any]
    search_val_accuracy: float | None
    seeds: tuple[int, ...]
    test_accuracies: tuple[float, ...]
    mean: float | None
    std: float | None
    ensemble_accuracy: float | None


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced (``to_dict`` is what ``nbft sweep --json`` prints)."""

    name: str
    storage: str
    tracking_uri: str
    mlflow_experiment: str
    parent_run_id: str
    trials: tuple[TrialSummary, ...]
    finals: tuple[FinalSummary, ...]
    decisions: tuple[PruneDecision, ...] = field(default=())
    final_trials: tuple[TrialSummary, ...] = field(default=())
    published: dict[str, Any] = field(default_factory=dict)
    """Where the results and the report went (``PublishedResults.to_dict()``)."""

    @property
    def best(self) -> TrialSummary | None:
        """The completed search trial with the highest validation accuracy."""
        ranked = _ranked(self.trials)
        return ranked[0] if ranked else None

    def counts(self) -> dict[str, int]:
        """Search trials by status."""
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        best = self.best
        return {
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
            "finals": [dataclasses.asdict(final) for final in self.finals],
            "trials": [dataclasses.asdict(trial) for trial in self.trials],
            "final_trials": [dataclasses.asdict(trial) for trial in self.final_trials],
            "decisions": [decision.to_dict() for decision in self.decisions],
            "report": self.published or None,
        }


def _ranked(trials: tuple[TrialSummary, ...] | list[TrialSummary]) -> list[TrialSummary]:
    completed = [t for t in trials if t.status == "completed" and t.val_accuracy is not None]
    # Ties broken by trial id, so that a resumed sweep picks the same top settings.
    return sorted(completed, key=lambda t: (-(t.val_accuracy or 0.0), t.trial_id))


def connect_ray() -> bool:
    """Connect to the cluster at ``RAY_ADDRESS``, or start a local Ray, unless connected.

    Returns:
        True when this call started or connected Ray (and the caller should shut it down).
    """
    import ray

    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or "local"
    # Worker output stays in Ray's session logs: the driver's stdout is for --json.
    ray.init(address=address, log_to_driver=False, include_dashboard=False)
    return True


def _trial_name(trial: Any) -> str:
    """Short trial names and folders: the trial id (the settings are in the config)."""
    return str(trial.trial_id)


def _check_resume(plan: SweepPlan, resume: bool) -> None:
    from ray.tune import Tuner

    uri = plan.storage.experiment_uri("search")
    path, filesystem = plan.storage.ray_storage()
    exists = Tuner.can_restore(f"{path}/search", storage_filesystem=filesystem)
    if resume and not exists:
        raise ConfigError(
            "--resume",
            f"a sweep started before at {uri}",
            "none found",
            "Run without --resume to start it.",
            plan.source,
        )
    if not resume and exists:
        raise ConfigError(
            "sweep.storage.path",
            f"a folder without an earlier sweep named {plan.name!r}",
            uri,
            "Pass --resume to continue it, or change 'name' or 'sweep.storage.path'.",
            plan.source,
        )


def _summaries(grid: Any, stage: str) -> list[TrialSummary]:
    summaries = []
    for result in grid:
        metrics = result.metrics or {}
        config = result.config or {}
        status = metrics.get("status") or "stopped"
        if result.error is not None:
            status = "error"
        elif status == "running":
            status = "stopped"  # ended by the time budget, mid-training
        val = metrics.get("val_accuracy")
        test = metrics.get("test_accuracy")
        summaries.append(
            TrialSummary(
                trial_id=str(metrics.get("trial_id") or Path(result.path).name),
                stage=stage,
                settings=settings_of(config),
                status=status,
                epochs=int(metrics.get("epoch", 0) or 0),
                val_accuracy=float(val) if isinstance(val, int | float) else None,
                test_accuracy=float(test) if isinstance(test, int | float) else None,
                prune_reason=metrics.get("prune_reason"),
                node_id=metrics.get("node_id"),
                seed=config.get("train_seed"),
                rank=config.get("final_rank"),
            )
        )
    return sorted(summaries, key=lambda t: t.trial_id)


def ensemble_accuracy(probabilities: list[np.ndarray], labels: np.ndarray) -> float:
    """Accuracy of the seed ensemble: the argmax of the mean softmax over the models.

    Args:
        probabilities: one (N, C) softmax array per model, rows in the same test order.
        labels: the N true labels.

    Raises:
        ValueError: no arrays, or arrays whose shapes disagree with each other or the labels.
    """
    if not probabilities:
        raise ValueError("ensemble_accuracy needs at least one model's probabilities")
    stacked = np.stack(probabilities)  # raises on shape mismatch
    if stacked.shape[1] != len(labels):
        raise ValueError(f"{stacked.shape[1]} predictions for {len(labels)} labels")
    return float((stacked.mean(axis=0).argmax(axis=1) == labels).mean())


class _Stage:
    """One Ray Tune experiment of the sweep ('search' or 'final'), new or restored."""

    def __init__(
        self,
        plan: SweepPlan,
        config: ExperimentConfig,
        stage: str,
        parent_run_id: str,
        options: Any,
    ) -> None:
        self.plan = plan
        self.config = config
        self.stage = stage
        self.parent_run_id = parent_run_id
        self.options = options

    def _callbacks(self, total: int, scheduler: Any) -> list[Any]:
        from nonbinary_ft.tuning.callbacks import MlflowTrialCallback, ProgressCallback
        from nonbinary_ft.tuning.pruning import (
            PruneStampCallback,
            PruningScheduler,
            SchedulerStateCallback,
        )

        key = self.plan.sweep_key
        mlflow = MlflowTrialCallback(
            self.plan.tracking_uri,
            self.plan.mlflow_experiment,
            key,
            self.parent_run_id,
            self.stage,
            log_decisions=self.stage == "search",
        )
        # The stamp must run before MLflow sees the result (callbacks run in list order).
        callbacks = [PruneStampCallback(key), mlflow, ProgressCallback(key, self.stage, total)]
        if isinstance(scheduler, PruningScheduler):
            callbacks.append(SchedulerStateCallback(scheduler))
        return callbacks

    def run(self, searcher: Any, scheduler: Any, num_samples: int, resume: bool) -> Any:
        """Fit the stage's Tuner (restored from storage when resuming and it exists).

        Returns:
            Ray Tune's ``ResultGrid``.
        """
        from ray.tune import (
            CheckpointConfig,
            FailureConfig,
            RunConfig,
            TuneConfig,
            Tuner,
        )

        from nonbinary_ft.tuning.trainable import create_trainable

        trainable = create_trainable(self.config, self.plan.resources, self.options)
        path, filesystem = self.plan.storage.ray_storage()
        experiment = f"{path}/{self.stage}"
        if resume and Tuner.can_restore(experiment, storage_filesystem=filesystem):
            logger.info("%s: resuming %s", self.stage, experiment)
            tuner = Tuner.restore(experiment, trainable=trainable, storage_filesystem=filesystem)
            return _fit_quietly(tuner)
        sweep = self.config.sweep
        tuner = Tuner(
            trainable,
            tune_config=TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=sweep.resources.max_concurrent,
                time_budget_s=sweep.budget.max_wall_time_s if self.stage == "search" else None,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
                # A worker runs trial after trial: Python, torch and CUDA start once.
                reuse_actors=True,
            ),
            run_config=RunConfig(
                name=self.stage,
                storage_path=path,
                storage_filesystem=filesystem,
                verbose=0,
                failure_config=FailureConfig(max_failures=sweep.max_failures),
                # Only the latest checkpoint of a trial is needed (to resume it, and in stage 3
                # for its test-set softmax); at 170 MB for Inception v4, keep no others.
                checkpoint_config=CheckpointConfig(num_to_keep=1),
                callbacks=self._callbacks(num_samples, scheduler),
            ),
        )
        return _fit_quietly(tuner)


def _fit_quietly(tuner: Any) -> Any:
    """``tuner.fit()`` with Ray's console output off and stdout kept for --json."""
    # Ray's newer console output prints an experiment header even with verbose=0; the legacy
    # reporter prints nothing at verbose=0. Anything else Ray prints goes to stderr.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # With CheckpointConfig(num_to_keep=1) Ray snapshots the experiment at every trial
    # checkpoint, which is what --resume wants; its warning about that is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    with contextlib.redirect_stdout(sys.stderr):
        return tuner.fit()


def _final_points(
    trials: list[TrialSummary],
    top_n: int,
    seeds: tuple[int, ...],
    default: dict[str, Any] | None = None,
) -> list[dict]:
    """The top N distinct settings x seeds, and ``default`` (rank 0) unless it is among them."""
    from nonbinary_ft.tuning.results_writer import same_settings
    from nonbinary_ft.tuning.trainable import RANK_KEY, SEED_KEY

    chosen: list[TrialSummary] = []
    for trial in _ranked(trials):
        if len(chosen) == top_n:
            break
        if all(trial.settings != other.settings for other in chosen):
            chosen.append(trial)
    ranked = list(enumerate((trial.settings for trial in chosen), start=1))
    # The binary default is measured in the same sweep, so that the gain over it is real.
    if chosen and default is not None and not any(same_settings(default, s) for _, s in ranked):
        ranked.append((0, default))
    return [
        {**settings, SEED_KEY: seed, RANK_KEY: rank} for rank, settings in ranked for seed in seeds
    ]


def _load_probabilities(result: Any) -> tuple[np.ndarray, np.ndarray] | None:
    from nonbinary_ft.tuning.trainable import LABELS_FILE, PROBS_FILE

    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as directory:
        probs, labels = Path(directory) / PROBS_FILE, Path(directory) / LABELS_FILE
        if not (probs.is_file() and labels.is_file()):
            return None
        return np.load(probs), np.load(labels)


def _final_summaries(
    grid: Any, trials: list[TrialSummary], search: list[TrialSummary]
) -> list[FinalSummary]:
    by_id = {result.metrics.get("trial_id"): result for result in grid if result.metrics}
    finals = []
    for rank in sorted({t.rank for t in trials if t.rank is not None}):
        group = sorted((t for t in trials if t.rank == rank), key=lambda t: t.seed or 0)
        accuracies = [t.test_accuracy for t in group if t.test_accuracy is not None]
        loaded = [_load_probabilities(by_id[t.trial_id]) for t in group if t.trial_id in by_id]
        usable = [item for item in loaded if item is not None]
        ensemble = None
        if usable and len(usable) == len(group):
            ensemble = ensemble_accuracy([probs for probs, _ in usable], usable[0][1])
        matches = [t for t in search if t.settings == group[0].settings and t.status == "completed"]
        finals.append(
            FinalSummary(
                rank=rank,
                settings=group[0].settings,
                search_val_accuracy=max((t.val_accuracy or 0.0) for t in matches)
                if matches
                else None,
                seeds=tuple(t.seed for t in group if t.seed is not None),
                test_accuracies=tuple(accuracies),
                mean=float(np.mean(accuracies)) if accuracies else None,
                # The sample standard deviation over seeds (0 for a single seed).
                std=float(np.std(accuracies, ddof=1))
                if len(accuracies) > 1
                else 0.0
                if accuracies
                else None,
                ensemble_accuracy=ensemble,
            )
        )
    return finals


def run_sweep(
    config: ExperimentConfig,
    *,
    source: str | Path | None = None,
    resume: bool = False,
    policy: PruningPolicy | None = None,
    progress: Callable[[Any], None] | None = None,
    options: Any = None,
) -> SweepResult:
    """Run (or resume) a sweep: search, then the seeded final runs of the best settings.

    Args:
        config: the validated sweep file.
        source: its path (relative space paths; error messages; logged to MLflow).
        resume: continue the sweep stored at ``sweep.storage`` instead of starting one.
        policy: the pruning policy (stage 1's hook); None prunes nothing.
        progress: called with a :class:`~nonbinary_ft.tuning.callbacks.SweepProgress` while
            the trials run (from Ray's controller loop: keep it quick).
        options: a :class:`~nonbinary_ft.tuning.trainable.TrainableOptions` (tests' hooks).

    Returns:
        The trials of both stages and the final statistics.

    Raises:
        ConfigError: a bad sweep file, --resume with nothing to resume, or a new sweep where
            one already exists (all before Ray starts).
        ray.tune.TuneError: the sweep itself failed.
    """
    from ray.tune.schedulers import FIFOScheduler

    from nonbinary_ft.tracking import SweepTracker
    from nonbinary_ft.tuning.results_writer import (
        analysis_document,
        binary_default_point,
        publish_results,
        trial_histories,
    )
    from nonbinary_ft.tuning.search import GridSearcher, create_scheduler, create_searcher
    from nonbinary_ft.tuning.trainable import TrainableOptions

    plan = plan_sweep(config, source)
    _check_resume(plan, resume)
    options = options or TrainableOptions()
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(SNAPSHOT_PERIOD_S))
    plan.storage.local_dir.mkdir(parents=True, exist_ok=True)
    key = plan.sweep_key
    sweep_live = live.register(key, policy=policy, listener=progress)
    artifacts = None
    if config.sweep.mlflow.tracking_uri is None:
        artifacts = (plan.storage.local_dir / "mlartifacts").as_uri()
    tracker = SweepTracker(plan.tracking_uri, plan.mlflow_experiment, key, artifacts)
    parent = tracker.open_parent(config.name, resume)
    if not resume:
        tracker.log_inputs(source, plan.to_dict(), plan.spaces_yaml())
    sweep_started_at = time.time()
    started = connect_ray()
    status = "FAILED"
    try:
        analysis_stage = _start_analysis(config, plan, sweep_live) if policy is None else None
        searcher = scheduler = None
        if not resume:
            searcher = create_searcher(
                config.sweep,
                key,
                space=plan.spaces[0] if plan.algorithm != "grid" else None,
                grid=plan.grid,
                num_layers=plan.num_layers,
                base=config.settings,
            )
            scheduler = create_scheduler(config.sweep, config.train.epochs, key)
        search_grid = _Stage(plan, config, "search", parent, options).run(
            searcher, scheduler, plan.num_trials, resume
        )
        trials = _summaries(search_grid, "search")
        histories = trial_histories(search_grid)
        points = _final_points(
            trials,
            config.sweep.final.top_n,
            config.sweep.final.seeds,
            default=binary_default_point(config),
        )
        final_trials: list[TrialSummary] = []
        finals: list[FinalSummary] = []
        if points:
            final_options = dataclasses.replace(options, final=True)
            final_grid = _Stage(plan, config, "final", parent, final_options).run(
                GridSearcher(points), FIFOScheduler(), len(points), resume
            )
            final_trials = _summaries(final_grid, "final")
            finals = _final_summaries(final_grid, final_trials, trials)
        elif config.sweep.final.top_n > 0:
            logger.warning("no search trial completed: no final runs")
        result = SweepResult(
            name=config.name,
            storage=plan.storage.root,
            tracking_uri=plan.tracking_uri,
            mlflow_experiment=plan.mlflow_experiment,
            parent_run_id=parent,
            trials=tuple(trials),
            finals=tuple(finals),
            decisions=tuple(sweep_live.decisions_since(0)),
            final_trials=tuple(final_trials),
        )
        tracker.log_summary(_finite(result.to_dict()))
        # The contract files, the report and their MLflow copies; failures there only warn.
        published = publish_results(
            plan.storage.local_dir,
            config,
            source,
            result,
            analysis_document(analysis_stage),
            sweep_started_at,
            time.time(),
            histories,
        )
        result = dataclasses.replace(result, published=published.to_dict())
        status = "FINISHED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.finish(status)
        live.unregister(key)
        if started:
            import ray

            ray.shutdown()


def _start_analysis(
    config: ExperimentConfig, plan: SweepPlan, sweep_live: live.SweepLive
) -> AnalysisPolicy | None:
    """Stage 1: start the analysis actor and let its evidence prune the search.

    The actor gets the resources of one trial; its policy replaces the (absent) caller's.
    """
    if not config.analysis.in_sweep:
        return None
    from nonbinary_ft.tuning.actor import AnalysisPolicy, start_analysis_actor

    resources = config.sweep.resources
    actor, run_ref = start_analysis_actor(
        config, plan.storage.local_dir / "analysis", resources.cpus, resources.gpus
    )
    analysis = config.analysis
    analysis_policy = AnalysisPolicy(
        actor,
        run_ref,
        analysis.prune_on_provisional,
        analysis.prune_min_rows,
        config.sweep.protect_top_fraction,
    )
    sweep_live.policy = analysis_policy
    logger.info("stage 1: analysis actor started")
    return analysis_policy


def _finite(document: Any) -> Any:
    """NaN and infinities as strings, for JSON artifacts."""
    if isinstance(document, dict):
        return {k: _finite(v) for k, v in document.items()}
    if isinstance(document, list | tuple):
        return [_finite(v) for v in document]
    if isinstance(document, float) and not math.isfinite(document):
        return str(document)
    return document
