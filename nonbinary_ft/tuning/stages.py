"""Ray Tune experiments of a sweep: connecting to Ray, and running a stage new or restored.

A stage is one Ray Tune experiment under ``<storage>/<name>/<stage>``: the search (stage 2)
or the seeded final runs (stage 3). :class:`StageRunner` builds its Tuner (or restores it
with ``Tuner.restore`` on ``--resume``: finished trials keep their results, unfinished and
errored ones continue from their last checkpoint) and runs it with Ray's console output off.
A stage whose fit returned is marked completed in storage, and a resume reads its results
rather than fitting it again. Ctrl-C stops the sweep once Ray has saved the stage's state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.search.policy import DecisionLog
from nonbinary_ft.tracking.runs import DatasetInfo
from nonbinary_ft.tuning.callbacks import MlflowTrialCallback, sweep_callbacks
from nonbinary_ft.tuning.checkpoints import (
    CheckpointPruner,
    ResultFilesUploader,
    snapshot_period_s,
)
from nonbinary_ft.tuning.plan import SweepPlan
from nonbinary_ft.tuning.preflight import check_ray_address
from nonbinary_ft.tuning.progress import ProgressCallback
from nonbinary_ft.tuning.searcher import trial_identity
from nonbinary_ft.tuning.session import session_of
from nonbinary_ft.tuning.trainable import TrainableOptions, create_trainable
from nonbinary_ft.vocabulary import Stage

__all__ = [
    "connect_ray",
    "check_resume",
    "fit_quietly",
    "StageRunner",
]

logger = logging.getLogger(__name__)

COMPLETED_FILE = "nbft_completed.json"
"""Written into a stage's experiment folder when its fit returns: a resume then reads the
stage's results instead of fitting it again."""

USER_SNAPSHOT_PERIOD = os.environ.get("TUNE_GLOBAL_CHECKPOINT_S")
"""Ray's snapshot period as the user set it for the driver (None: the sweep chooses it)."""


def connect_ray() -> bool:
    """Connect to the cluster at ``RAY_ADDRESS``, or start a local Ray, unless connected.

    Returns:
        True when this call started or connected Ray (and the caller should shut it down).

    Raises:
        ConfigError: RAY_ADDRESS does not answer.
    """
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or "local"
    check_ray_address(address)
    # Worker output stays in Ray's session logs: the driver's stdout is for --json.
    ray.init(address=address, log_to_driver=False, include_dashboard=False)
    return True


def check_resume(plan: SweepPlan, resume: bool) -> None:
    """Refuse ``--resume`` with nothing stored, and a new sweep where one is stored.

    Raises:
        ConfigError: naming the storage location and the fix.
    """
    uri = plan.storage.experiment_uri(Stage.SEARCH)
    path, filesystem = plan.storage.ray_storage()
    exists = Tuner.can_restore(f"{path}/{Stage.SEARCH}", storage_filesystem=filesystem)
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


def _trial_name(trial: Any) -> str:
    """Short trial names and folders: the trial id (the settings are in the config)."""
    return str(trial.trial_id)


def _storage_filesystem(filesystem: Any) -> Any:
    """The stage's storage filesystem: the S3 one given, else the local disk."""
    import pyarrow.fs

    return filesystem or pyarrow.fs.LocalFileSystem()


def mark_completed(experiment: str, filesystem: Any, grid: Any) -> None:
    """Record in storage that the stage's fit returned (with how many trials and errors)."""
    document = {"trials": len(grid), "errors": len(grid.errors)}
    with _storage_filesystem(filesystem).open_output_stream(
        f"{experiment}/{COMPLETED_FILE}"
    ) as stream:
        stream.write(json.dumps(document).encode())


def is_completed(experiment: str, filesystem: Any) -> bool:
    """Whether :func:`mark_completed` ran for this stage."""
    import pyarrow.fs

    info = _storage_filesystem(filesystem).get_file_info(f"{experiment}/{COMPLETED_FILE}")
    return info.type == pyarrow.fs.FileType.File


def restored_trials(experiment: str, filesystem: Any) -> frozenset[str] | None:
    """What every trial of the newest experiment state in storage trains (the searcher's
    identity of its settings): what a resumed Tuner restores. None when it cannot be read."""
    import pyarrow.fs

    filesystem = _storage_filesystem(filesystem)
    try:
        found = filesystem.get_file_info(pyarrow.fs.FileSelector(experiment))
        states = sorted(
            info.path for info in found if info.base_name.startswith("experiment_state-")
        )
        with filesystem.open_input_stream(states[-1]) as stream:
            document = json.loads(stream.readall())
        configs = [json.loads(item[0])["config"] for item in document["trial_data"]]
    except (OSError, IndexError, KeyError, TypeError, ValueError) as error:
        logger.warning("cannot read the restored trials of %s (%s)", experiment, error)
        return None
    return frozenset(trial_identity(config) for config in configs)


def fit_quietly(tuner: Tuner, planned_trials: int = 0) -> Any:
    """``tuner.fit()`` with Ray's console output off and stdout kept for --json, snapshotting
    the experiment as often as suits ``planned_trials`` (see :func:`snapshot_period_s`)."""
    # Ray's newer console output prints an experiment header even with verbose=0; the legacy
    # reporter prints nothing at verbose=0. Anything else Ray prints goes to stderr.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # With CheckpointConfig(num_to_keep=1) (replay collections) Ray snapshots the experiment
    # at every trial checkpoint, which is what --resume wants; its warning about that is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Read by each new Tuner's controller, so set per stage (unless the user set it).
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = USER_SNAPSHOT_PERIOD or str(
        snapshot_period_s(planned_trials)
    )
    with contextlib.redirect_stdout(sys.stderr), _stop_on_interrupt() as interrupted:
        grid = tuner.fit()
    if interrupted.is_set():
        raise KeyboardInterrupt
    return grid


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C stops the sweep, after Ray has stopped the experiment and saved its state.

    Ray's own SIGINT handler ends the experiment gracefully but then returns from ``fit`` as
    if it had finished: the sweep would go on to the next stage with a partial one, and mark
    it completed. Here Ctrl-C sends Ray its other stop signal (SIGUSR1, the same graceful
    stop), and the event tells the caller to raise KeyboardInterrupt once ``fit`` returns.
    Before Ray's experiment loop has its SIGUSR1 handler, and at a second Ctrl-C, the
    interrupt is immediate.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers belong to the main thread
        return
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.signal(signal.SIGINT, previous[0])
        if signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL:
            raise KeyboardInterrupt  # Ray's loop has not started: nothing to save
        os.kill(os.getpid(), signal.SIGUSR1)

    signal.signal(signal.SIGINT, on_interrupt)
    # SIGUSR1's default ends the process: set until this fit's Ray installs its handler (an
    # earlier stage's is still there, tied to an experiment that has ended).
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ray leaves SIGINT to on_interrupt
    try:
        yield interrupted
    finally:
        if signal.getsignal(signal.SIGINT) is on_interrupt:
            signal.signal(signal.SIGINT, previous[0])
        if previous[1] is not None:  # None: a handler not set from Python, left alone
            signal.signal(signal.SIGUSR1, previous[1])


class StageRunner:
    """Runs the sweep's stages as Ray Tune experiments.

    Args:
        plan: the checked sweep plan.
        config: the sweep file.
        parent_run_id: the sweep's MLflow parent run.
        decisions: the sweep's decision log (written to MLflow by the search stage).
        datasets: the splits, logged as dataset inputs of every trial's run.
    """

    def __init__(
        self,
        plan: SweepPlan,
        config: ExperimentConfig,
        parent_run_id: str,
        decisions: DecisionLog,
        datasets: Sequence[DatasetInfo] = (),
    ) -> None:
        self.plan = plan
        self.config = config
        self.parent_run_id = parent_run_id
        self.decisions = decisions
        self.datasets = tuple(datasets)

    def _callbacks(self, stage: Stage, total: int, scheduler: Any) -> list[Any]:
        key = self.plan.sweep_key
        mlflow = MlflowTrialCallback(
            self.plan.tracking_uri,
            self.plan.mlflow_experiment,
            key,
            self.parent_run_id,
            stage,
            self.decisions if stage == Stage.SEARCH else None,
            self.datasets,
        )
        progress = ProgressCallback(key, stage, total)
        return [
            *sweep_callbacks(scheduler, mlflow, progress),
            ResultFilesUploader(),
            CheckpointPruner(),
        ]

    def _resume(self, experiment: str, trainable: Any, filesystem: Any, planned: int) -> Any:
        # Errored trials are retried from their last checkpoint too: a resume is the user
        # saying the cause is fixed (a node back, a full disk emptied).
        tuner = Tuner.restore(
            experiment, trainable=trainable, storage_filesystem=filesystem, resume_errored=True
        )
        if is_completed(experiment, filesystem):
            # Fitting a finished stage again only restores, snapshots and re-reads every trial
            # (10 s of a 1,000-trial sweep's 22 s resume); the restored Tuner holds its results.
            with contextlib.suppress(RuntimeError):  # raised when Ray could not read them
                grid = tuner.get_results()
                if not grid.errors:  # errored trials are retried, as below
                    return grid
        session = session_of(self.plan.sweep_key)
        session.restored = restored_trials(experiment, filesystem)
        try:
            return fit_quietly(tuner, planned)
        finally:
            session.restored = None

    def run(
        self,
        stage: Stage,
        searcher: Any,
        scheduler: Any,
        num_samples: int,
        resume: bool,
        options: TrainableOptions,
    ) -> Any:
        """Fit the stage's Tuner (restored from storage when resuming and it exists).

        Returns:
            Ray Tune's ``ResultGrid``.
        """
        trainable = create_trainable(self.config, self.plan.resources, options)
        path, filesystem = self.plan.storage.ray_storage()
        experiment = f"{path}/{stage}"
        if resume and Tuner.can_restore(experiment, storage_filesystem=filesystem):
            logger.info("%s: resuming %s", stage, experiment)
            grid = self._resume(experiment, trainable, filesystem, num_samples)
        else:
            tuner = self._tuner(stage, searcher, scheduler, num_samples, trainable)
            grid = fit_quietly(tuner, num_samples)
        mark_completed(experiment, filesystem, grid)
        return grid

    def _tuner(
        self, stage: Stage, searcher: Any, scheduler: Any, num_samples: int, trainable: Any
    ) -> Tuner:
        """A new Tuner for the stage, stored under the sweep's storage."""
        path, filesystem = self.plan.storage.ray_storage()
        sweep = self.config.sweep
        return Tuner(
            trainable,
            tune_config=TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=sweep.resources.max_concurrent,
                time_budget_s=sweep.budget.max_wall_time_s if stage == Stage.SEARCH else None,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
                # A worker runs trial after trial: Python, torch and CUDA start once.
                reuse_actors=True,
            ),
            run_config=RunConfig(
                name=str(stage),
                storage_path=path,
                storage_filesystem=filesystem,
                verbose=0,
                failure_config=FailureConfig(max_failures=sweep.max_failures),
                # Only the checkpoints a snapshot names are needed (170 MB each for Inception
                # v4): CheckpointPruner deletes the others. Ray's own num_to_keep would force a
                # snapshot of every trial's state at every trial checkpoint.
                checkpoint_config=CheckpointConfig(num_to_keep=None),
                callbacks=self._callbacks(stage, num_samples, scheduler),
            ),
        )
