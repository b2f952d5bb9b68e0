"""MLflow runs of a sweep: one parent run per sweep and one child run per trial.

Only the driver writes (through :class:`SweepTracker`); trials never talk to MLflow, so a
sweep on a cluster needs no MLflow credentials on the workers and a SQLite file is enough for
a laptop. Runs carry tags that identify them (``nbft.sweep_key``, ``nbft.stage``,
``nbft.trial_id``), so that a resumed sweep finds and continues its runs instead of starting
new ones.

What MLflow's UI shows is set the way MLflow's own clients set it: the experiment is a
model-training one (``mlflow.experimentKind``), so the UI opens on its runs; every trial's
splits are dataset inputs (the runs table's Dataset column); the parent run carries the
source tags and, as its description (``mlflow.note.content``), the verdict; an ``analysis``
child run holds table 1.
"""

from __future__ import annotations

import getpass
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.tracking import MlflowClient

__all__ = [
    "SweepTracker",
    "DatasetInfo",
    "TAG_ROLE",
    "TAG_STAGE",
    "TAG_TRIAL",
    "TAG_STATUS",
    "TAG_REASON",
    "EXPERIMENT_KIND",
    "runs_page",
]

logger = logging.getLogger(__name__)

TAG_KEY = "nbft.sweep_key"
TAG_ROLE = "nbft.role"
TAG_STAGE = "nbft.stage"
TAG_TRIAL = "nbft.trial_id"
TAG_STATUS = "nbft.status"
TAG_REASON = "nbft.prune_reason"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3's kind for model training: its UI then opens the experiment on the runs table
(without it, on the GenAI overview of traces)."""


@dataclass(frozen=True)
class DatasetInfo:
    """One split as an MLflow dataset input.

    Attributes:
        name: the data set's name (kind and root or name).
        digest: a short hash of the split's content key (its images and labels).
        source_type: the data kind (``imagefolder``, ``digits``, ...).
        source: where it is read from, as JSON.
        context: ``training``, ``validation`` or ``test``.
        profile: its size and classes, as JSON.
    """

    name: str
    digest: str
    source_type: str
    source: str
    context: str
    profile: str = ""

    def as_input(self) -> DatasetInput:
        """The MLflow entity."""
        dataset = Dataset(self.name, self.digest, self.source_type, self.source, None, self.profile)
        return DatasetInput(dataset, [InputTag("mlflow.data.context", self.context)])


# How a trial's outcome maps onto MLflow's run status: a pruned or diverged trial is a valid
# outcome of the sweep (FINISHED, with its own status tag); only an error FAILS the run.
MLFLOW_STATUS = {"error": "FAILED", "running": "RUNNING"}


def runs_page(tracking_uri: str, experiment_id: str) -> str:
    """The MLflow UI's page of an experiment's runs table.

    MLflow 3's UI keeps a global GenAI / model-training switch (in the browser's storage,
    GenAI by default) that can outrank the experiment's kind; ``workflowType`` in the URL
    sets it, so this link opens on the runs whatever the browser last chose. A local store
    is served by ``mlflow ui`` on its default address.
    """
    remote = tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri.rstrip("/") if remote else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}?workflowType=machine_learning"


def _source_tags(source: str | Path | None) -> dict[str, str]:
    """MLflow's standard source tags: who, which entry point, and the git commit when the
    sweep file lies in a repository."""
    from mlflow.utils.git_utils import get_git_commit, get_git_repo_url

    tags = {
        "mlflow.user": getpass.getuser(),
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"nbft sweep {source}" if source else "nbft sweep",
    }
    if source is not None:
        folder = str(Path(source).resolve().parent)
        commit, url = get_git_commit(folder), get_git_repo_url(folder)
        if commit:
            tags["mlflow.source.git.commit"] = commit
        if url:
            tags["mlflow.source.git.repoURL"] = url
    return tags


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


class SweepTracker:
    """The MLflow side of one sweep.

    Args:
        tracking_uri: where MLflow stores runs (e.g. ``sqlite:///runs/x/mlflow.db``).
        experiment: the MLflow experiment name (created if missing).
        sweep_key: the sweep's identity, stored as a tag on all its runs.
        artifact_location: artifact root for a new experiment (local stores need one, or
            MLflow writes ``./mlruns`` in the working directory).

    Raises:
        mlflow.exceptions.MlflowException: the tracking store cannot be reached.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        sweep_key: str,
        artifact_location: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.sweep_key = sweep_key
        self.client = MlflowClient(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        self.parent_run_id: str | None = None

    # --- the parent run ----------------------------------------------------------------------

    def open_parent(self, name: str, resume: bool, source: str | Path | None = None) -> str:
        """Start the sweep's parent run, or on resume reopen the one it started before.

        Args:
            name: the run's name (the experiment's name).
            resume: look for the sweep's earlier parent run first.
            source: the sweep file (the run's source tags: entry point, git commit).

        Returns:
            The parent run's id.
        """
        if resume:
            runs = self._search(f"tags.`{TAG_ROLE}` = 'sweep'")
            if runs:
                self.parent_run_id = runs[0].info.run_id
                self.client.update_run(self.parent_run_id, status="RUNNING")
                return self.parent_run_id
        run = self.client.create_run(
            self.experiment_id,
            tags={TAG_ROLE: "sweep", TAG_KEY: self.sweep_key, **_source_tags(source)},
            run_name=name,
        )
        self.parent_run_id = run.info.run_id
        return self.parent_run_id

    def describe(self, markdown: str, run_id: str | None = None) -> None:
        """Set a run's description (the parent's by default), as MLflow's UI edits it."""
        self.client.set_tag(run_id or self._parent(), NOTE_TAG, markdown)

    def log_analysis(self, table1: Mapping[str, Any], regime: str, markdown: str) -> str:
        """An ``analysis`` child run: table 1's numbers as metrics, the table as its
        description, the regime as a tag. Returns its id (an existing one on resume)."""
        runs = self._search(f"tags.`{TAG_ROLE}` = 'analysis'")
        if runs:
            run_id = runs[0].info.run_id
        else:
            tags = {PARENT_TAG: self._parent(), TAG_KEY: self.sweep_key, TAG_ROLE: "analysis"}
            run_id = self.client.create_run(self.experiment_id, tags=tags, run_name="analysis")
            run_id = run_id.info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, 0)
            for key, value in table1.items()
            if isinstance(value, int | float) and math.isfinite(value)
        ]
        tags = [RunTag("nbft.regime", regime), RunTag(NOTE_TAG, markdown)]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def attach_parent(self, parent_run_id: str) -> None:
        """Use an existing parent run (the driver callbacks, given the id by the sweep)."""
        self.parent_run_id = parent_run_id

    def log_inputs(
        self, sweep_file: str | Path | None, plan: Mapping[str, Any], spaces: str
    ) -> None:
        """Attach the sweep file, the resolved plan and the resolved spaces to the parent."""
        run_id = self._parent()
        if sweep_file is not None and Path(sweep_file).is_file():
            self.client.log_artifact(run_id, str(sweep_file), "sweep")
        self.client.log_dict(run_id, dict(plan), "sweep/plan.json")
        self.client.log_text(run_id, spaces, "sweep/spaces.yaml")

    def log_decisions(self, decisions: Iterable[Mapping[str, Any]], session: str) -> None:
        """Write a driver session's pruning decisions to the parent run.

        Args:
            decisions: the decisions (dicts with at least 'kind' and 'reason').
            session: names the artifact ``pruning/decisions-<session>.json``, so that a resumed
                sweep adds a file instead of overwriting the first driver's.
        """
        rows = [dict(decision) for decision in decisions]
        self.client.log_dict(
            self._parent(), {"decisions": rows}, f"pruning/decisions-{session}.json"
        )

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """Log the sweep's outcome on the parent: best settings, final mean +- std, ensemble.

        Args:
            summary: ``best_settings`` (dict), ``best_val_accuracy`` and ``finals`` (a list of
                dicts with ``rank``, ``mean``, ``std``, ``ensemble_accuracy``), as produced by
                ``SweepResult.to_dict()``.
        """
        run_id = self._parent()
        now = int(time.time() * 1000)
        best = summary.get("best_settings") or {}
        params = [Param(f"best.{key}", str(value)) for key, value in best.items()]
        metrics = []
        if summary.get("best_val_accuracy") is not None:
            metrics.append(Metric("best_val_accuracy", summary["best_val_accuracy"], now, 0))
        for final in summary.get("finals", []):
            # Rank 0 is the binary baseline, re-run beside the top settings.
            prefix = {0: "final.binary_default", 1: "final"}.get(
                final["rank"], f"final.rank{final['rank']}"
            )
            for key in ("mean", "std", "ensemble_accuracy"):
                value = final.get(key)
                if value is not None and math.isfinite(value):
                    name = (
                        f"{prefix}.test_accuracy_{key}"
                        if key != "ensemble_accuracy"
                        else (f"{prefix}.ensemble_accuracy")
                    )
                    metrics.append(Metric(name, value, now, 0))
        self.client.log_batch(run_id, metrics=metrics, params=params)
        self.client.log_dict(run_id, dict(summary), "sweep/summary.json")

    def started_at(self) -> float:
        """When the sweep started: its parent run's start (seconds since the epoch), which a
        resumed sweep keeps, so that trial and decision times count from one origin."""
        return self.client.get_run(self._parent()).info.start_time / 1000

    def finish(self, status: str = "FINISHED") -> None:
        """End the parent run ('FINISHED', 'FAILED' or 'KILLED')."""
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status)

    # --- child runs --------------------------------------------------------------------------

    def trial_runs(self, stage: str) -> dict[str, str]:
        """The child runs of one stage of this sweep: trial id -> run id."""
        runs = self._search(f"tags.`{TAG_ROLE}` = 'trial' and tags.`{TAG_STAGE}` = {_quote(stage)}")
        return {run.data.tags[TAG_TRIAL]: run.info.run_id for run in runs}

    def start_trial(
        self,
        stage: str,
        trial_id: str,
        settings: Mapping[str, Any],
        datasets: Sequence[DatasetInfo] = (),
    ) -> str:
        """Create a trial's child run, with its settings as parameters and its splits as
        dataset inputs.

        Returns:
            The new run's id.
        """
        run = self.client.create_run(
            self.experiment_id,
            tags={
                PARENT_TAG: self._parent(),
                TAG_KEY: self.sweep_key,
                TAG_ROLE: "trial",
                TAG_STAGE: stage,
                TAG_TRIAL: trial_id,
                TAG_STATUS: "running",
            },
            run_name=f"{stage}-{trial_id}",
        )
        params = [Param(key, str(value)) for key, value in settings.items()]
        self.client.log_batch(run.info.run_id, params=params)
        if datasets:
            self.client.log_inputs(run.info.run_id, [info.as_input() for info in datasets])
        return run.info.run_id

    def last_step(self, run_id: str, key: str = "val_accuracy") -> int:
        """The last step (epoch) logged for ``key`` on a run (0 when none)."""
        history = self.client.get_metric_history(run_id, key)
        return max((metric.step for metric in history), default=0)

    def log_epoch(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """Log one epoch's numeric metrics with ``step=epoch``."""
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a run (values turned into strings)."""
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_trial(self, run_id: str, status: str, reason: str | None = None) -> None:
        """Close a child run with the trial's status and, if pruned or stopped, the reason."""
        tags = {TAG_STATUS: status}
        if reason:
            tags[TAG_REASON] = reason
        self.set_tags(run_id, tags)
        self.client.set_terminated(run_id, MLFLOW_STATUS.get(status, "FINISHED"))

    def delete_run(self, run_id: str) -> None:
        """Delete a run (a resumed sweep's run for a trial that its restored state lost)."""
        self.client.delete_run(run_id)

    # --- helpers -----------------------------------------------------------------------------

    def _parent(self) -> str:
        if self.parent_run_id is None:
            raise RuntimeError("open_parent() or attach_parent() first")
        return self.parent_run_id

    def _search(self, condition: str) -> list[Any]:
        query = f"tags.`{TAG_KEY}` = {_quote(self.sweep_key)} and {condition}"
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                query,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs
