"""A sweep's files in MLflow: its results and report on the parent run, and reading them back.

The sweep logs its results files (:mod:`nonbinary_ft.results`) to its parent run under the
artifact path ``results/`` (:func:`log_results`); ``nbft report <run id>`` downloads them into
a temporary folder and reads them like a run folder. The report goes under ``report/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from nonbinary_ft.results import RESULTS_FILES, ResultsError, SweepResults, load_results
from nonbinary_ft.tracking.runs import TAG_ROLE
from nonbinary_ft.tracking.server import check_server

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "RESULTS_ARTIFACT_PATH",
    "REPORT_ARTIFACT_PATH",
    "load_from_mlflow",
    "log_results",
    "log_files",
    "find_parent_run",
    "tracking_client",
]

logger = logging.getLogger(__name__)

RESULTS_ARTIFACT_PATH = "results"
REPORT_ARTIFACT_PATH = "report"


def _one_line(error: Exception) -> str:
    # MLflow's messages run to paragraphs; the CLI promises one line.
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a tqdm bar on stderr while downloading; the CLI keeps stderr to one line."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def tracking_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client of ``tracking_uri``; ResultsError (one line) when it cannot open, or
    when a server does not answer in seconds (MLflow's own client would retry for minutes)."""
    # Imported here, not at the top: importing mlflow takes seconds, and a report on a run
    # folder with no tracking URI never needs it.
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    why = check_server(tracking_uri)
    if why is not None:
        raise ResultsError(f"cannot use the MLflow tracking server {tracking_uri}: {why}")
    try:
        return MlflowClient(tracking_uri)
    except MlflowException as error:
        raise ResultsError(
            f"cannot open the MLflow tracking store {tracking_uri}: {_one_line(error)}"
        ) from None


def load_from_mlflow(run_id: str, tracking_uri: str, workdir: str | Path) -> SweepResults:
    """Download a sweep's ``results/`` artifacts from its parent run and read them.

    Args:
        run_id: the sweep's MLflow parent run id.
        tracking_uri: the MLflow tracking URI that holds it.
        workdir: where to download (a temporary folder: the results are read into memory).

    Raises:
        ResultsError: the store cannot be opened, the run does not exist, or it holds no
            ``results/`` artifacts (it is not a sweep's parent run).
    """
    from mlflow.exceptions import MlflowException

    client = tracking_client(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ResultsError(f"MLflow run {run_id} not found at {tracking_uri}") from None
        raise ResultsError(f"cannot read MLflow run {run_id}: {_one_line(error)}") from None
    not_a_sweep = (
        f"MLflow run {run_id} has no '{RESULTS_ARTIFACT_PATH}/' artifacts: it is not a "
        "sweep's parent run, or its sweep did not log its results"
    )
    try:
        if not client.list_artifacts(run_id, RESULTS_ARTIFACT_PATH):
            raise ResultsError(not_a_sweep)
        with _no_progress_bar():
            local = client.download_artifacts(run_id, RESULTS_ARTIFACT_PATH, str(workdir))
    except (MlflowException, OSError):
        raise ResultsError(not_a_sweep) from None
    try:
        results = load_results(local)
    except ResultsError:
        raise ResultsError(not_a_sweep) from None
    return dataclasses.replace(results, source=f"MLflow run {run_id} at {tracking_uri}")


def log_files(run_id: str, tracking_uri: str, files: Iterable[Path], artifact_path: str) -> None:
    """Log ``files`` to the run under ``artifact_path``.

    Raises:
        ResultsError: the store cannot be opened.
        mlflow.exceptions.MlflowException: the run or its artifact store cannot be written.
    """
    client = tracking_client(tracking_uri)
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path)


def log_results(folder: str | Path, run_id: str, tracking_uri: str) -> None:
    """Log the contract's files of a run folder to the sweep's parent run under ``results/``.

    For the sweep to call when it ends (and after each stage, so that an interrupted sweep can
    still be reported from MLflow). Files not written yet are skipped.
    """
    files = [Path(folder) / name for name in RESULTS_FILES if (Path(folder) / name).is_file()]
    log_files(run_id, tracking_uri, files, RESULTS_ARTIFACT_PATH)


def find_parent_run(tracking_uri: str, experiment: str, name: str) -> str | None:
    """The newest sweep parent run named ``name`` in ``experiment``, or None.

    Used when a run folder does not record its parent run id (older sweeps).
    """
    client = tracking_client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    quoted = name.replace("'", "\\'")
    runs = client.search_runs(
        [found.experiment_id],
        f"tags.`{TAG_ROLE}` = 'sweep' and attributes.run_name = '{quoted}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None
