"""``nbft report RUN``: find the sweep (a run folder or an MLflow run), report it, log it back.

A run folder is read directly. Anything else that is not a path is taken for an MLflow parent
run id, read from ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``. The report is logged to the
sweep's parent run whenever a tracking URI is known: the given one, else the sweep file's
``sweep.mlflow.tracking_uri``, else the one in ``environment.json``, else the run folder's own
``mlflow.db`` (where a local sweep keeps its runs).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nonbinary_ft.reporting.render import ReportPaths, write_report
from nonbinary_ft.reporting.verdict import Verdict, build_verdict, sweep_document
from nonbinary_ft.results import Missing, ResultsError, SweepResults, load_results

__all__ = ["ReportOutcome", "report_run", "tracking_uri_for"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOutcome:
    """What ``nbft report`` did: the files, the verdict and where the report was logged."""

    paths: ReportPaths
    verdict: Verdict
    logged_to: str | None
    log_note: str | None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: ``{"paths", "verdict", "mlflow"}``."""
        v = self.verdict
        return {
            "paths": self.paths.to_dict(),
            "verdict": {
                "regime": v.regime,
                "provisional": v.provisional,
                "settings": v.settings,
                "settings_source": v.settings_source,
                "test_accuracy_mean": v.mean,
                "test_accuracy_std": v.std,
                "ensemble_accuracy": v.ensemble,
                "binary_default_mean": v.default_mean,
                "gain_over_default": v.gain,
                "notes": list(v.notes),
            },
            "mlflow": {"logged_to_run": self.logged_to, "note": self.log_note},
        }


def _sweep_mlflow(results: SweepResults) -> dict[str, Any]:
    sweep = sweep_document(results.sweep_yaml).get("sweep")
    mlflow = sweep.get("mlflow") if isinstance(sweep, dict) else None
    # A sweep file written by hand may hold anything here: only a mapping says where MLflow is.
    return mlflow if isinstance(mlflow, dict) else {}


def tracking_uri_for(folder: Path, results: SweepResults) -> str | None:
    """The tracking URI of a run folder's sweep (see the module docstring), or None."""
    configured = _sweep_mlflow(results).get("tracking_uri")
    if configured:
        return str(configured)
    environment = results.environment
    if not isinstance(environment, Missing) and environment.mlflow.get("tracking_uri"):
        return str(environment.mlflow["tracking_uri"])
    database = folder / "mlflow.db"
    # Only an existing file: opening a missing SQLite URI would create an empty store.
    return f"sqlite:///{database.resolve()}" if database.is_file() else None


def _parent_run(results: SweepResults, tracking_uri: str) -> str | None:
    from nonbinary_ft.tracking.artifacts import find_parent_run

    environment = results.environment
    if not isinstance(environment, Missing) and environment.mlflow.get("parent_run_id"):
        return str(environment.mlflow["parent_run_id"])
    if results.name is None:
        return None
    experiment = _sweep_mlflow(results).get("experiment") or results.name
    return find_parent_run(tracking_uri, str(experiment), results.name)


def _log(paths: ReportPaths, run_id: str | None, tracking_uri: str) -> tuple[str | None, str]:
    from nonbinary_ft.tracking.artifacts import REPORT_ARTIFACT_PATH, log_files

    if run_id is None:
        return None, f"not logged: no sweep parent run found at {tracking_uri}"
    files = [paths.html, paths.markdown, paths.recommended, *paths.images]
    try:
        log_files(run_id, tracking_uri, files, REPORT_ARTIFACT_PATH)
    except Exception as error:  # the report is written: logging is a bonus
        logger.warning("could not log the report to MLflow run %s: %s", run_id, error)
        return None, f"not logged to MLflow run {run_id}: {_first_line(error)}"
    return run_id, f"logged to MLflow run {run_id} under '{REPORT_ARTIFACT_PATH}/'"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _looks_like_path(run: str) -> bool:
    return os.sep in run or "/" in run or run.startswith((".", "~"))


def report_run(
    run: str, out_dir: str | Path | None = None, tracking_uri: str | None = None
) -> ReportOutcome:
    """Write the report of a sweep given by run folder or MLflow parent run id.

    Args:
        run: a sweep's run folder, or its MLflow parent run id.
        out_dir: output folder; default: the run folder, or ``runs/<name>/report`` for a
            run id.
        tracking_uri: MLflow tracking URI (see the module docstring for the default).

    Raises:
        ResultsError: not a sweep folder, no such folder, an unknown run id, or a run id with
            no tracking URI to look it up in.
    """
    folder = Path(run).expanduser()
    if folder.is_dir():
        results = load_results(folder)
        uri = tracking_uri or tracking_uri_for(folder, results)
        out = Path(out_dir) if out_dir is not None else folder
        run_id = None
    elif folder.exists():
        raise ResultsError(
            f"RUN {run} is a file: expected a sweep's run folder (the one holding sweep.yaml "
            "and trials.json) or its MLflow parent run id"
        )
    elif _looks_like_path(run):
        raise ResultsError(f"RUN {run} is not a sweep folder: it does not exist")
    else:
        from nonbinary_ft.tracking.artifacts import load_from_mlflow

        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise ResultsError(
                f"{run} is not a folder; to read it as an MLflow run id, give --tracking-uri "
                "(or set MLFLOW_TRACKING_URI)"
            )
        with tempfile.TemporaryDirectory(prefix="nbft-report-") as workdir:
            results = load_from_mlflow(run, uri, workdir)
        out = (
            Path(out_dir)
            if out_dir is not None
            else Path("runs") / (results.name or run) / "report"
        )
        run_id = run
    paths = write_report(results, out)
    verdict = build_verdict(results)  # cheap and pure: the same verdict the report shows
    if not uri:
        return ReportOutcome(paths, verdict, None, "not logged: no MLflow tracking URI known")
    try:
        run_id = run_id or _parent_run(results, uri)
    except Exception as error:  # an unreachable store must not fail it
        return ReportOutcome(paths, verdict, None, f"not logged: {_first_line(error)}")
    logged_to, note = _log(paths, run_id, uri)
    return ReportOutcome(paths, verdict, logged_to, note)
