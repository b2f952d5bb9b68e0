"""The end of a sweep: its results in the run folder, the report beside them, both in MLflow.

:func:`sweep_results` assembles the :class:`~nonbinary_ft.results.schema.SweepResults` of a
finished sweep from what each stage produced; :func:`publish_results` writes them through the
one writer (:func:`~nonbinary_ft.results.io.save_results`), renders the report next to them and
logs both to the sweep's MLflow parent run. A failure after the files are written (the report,
MLflow) is logged as a warning and never loses the sweep's results.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.reporting import write_report
from nonbinary_ft.results import (
    AnalysisResults,
    FinalEntry,
    Missing,
    PruningDecision,
    SweepResults,
    TrialResult,
    collect_environment,
    load_results,
    save_results,
)
from nonbinary_ft.tracking.artifacts import REPORT_ARTIFACT_PATH, log_files, log_results
from nonbinary_ft.tracking.server import mlflow_database

__all__ = [
    "PublishedResults",
    "analysis_results",
    "sweep_results",
    "publish_results",
]

logger = logging.getLogger(__name__)

NO_ANALYSIS = "stage 1 (the analysis) did not run in this sweep"


@dataclass(frozen=True)
class PublishedResults:
    """Where a sweep's results went; a path is None when that step failed (see ``notes``)."""

    folder: Path
    report_html: Path | None
    report_markdown: Path | None
    logged_to_mlflow: bool
    mlflow_database: Path | None = None
    mlflow_ui_command: str | None = None
    notes: tuple[str, ...] = ()


def analysis_results(stage: Any) -> AnalysisResults | Missing:
    """Stage 1's results (from ``stage.document()``), or why there are none.

    An actor that failed gives a :class:`Missing` with the error instead of raising: the
    sweep's results are written either way.
    """
    if stage is None:
        return Missing(NO_ANALYSIS)
    try:
        document = stage.document()
    except Exception as error:
        logger.warning("could not read the analysis actor's results: %s", error)
        return Missing(f"the analysis actor failed: {str(error).splitlines()[0][:300]}")
    if document is None:
        return Missing("the analysis gave no results")
    return AnalysisResults.from_document(document)


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat()


def _sweep_yaml(config: ExperimentConfig, source: str | Path | None) -> str:
    """The sweep file's text (the config dumped as YAML when there is no file)."""
    if source is not None and Path(source).is_file():
        return Path(source).read_text()
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)


def sweep_results(
    config: ExperimentConfig,
    source: str | Path | None,
    analysis: AnalysisResults | Missing,
    trials: Sequence[TrialResult],
    decisions: Sequence[PruningDecision],
    finals: Sequence[FinalEntry],
    span: tuple[float, float],
    mlflow: Mapping[str, str | None],
) -> SweepResults:
    """A finished sweep's results, ready for :func:`publish_results`.

    Args:
        config: the sweep file, validated.
        source: its path; ``sweep.yaml`` is its text.
        analysis: stage 1's results.
        trials: the search trials.
        decisions: every pruning decision.
        finals: stage 3's entries.
        span: when the sweep started and ended, seconds since the epoch.
        mlflow: ``tracking_uri``, ``experiment`` and ``parent_run_id``.
    """
    seeds = [config.train.seed, *(s for s in config.sweep.final.seeds if s != config.train.seed)]
    environment = collect_environment(seeds, _iso(span[0]), _iso(span[1]), mlflow)
    return SweepResults(
        source=str(source) if source is not None else config.name,
        sweep_yaml=_sweep_yaml(config, source),
        analysis=analysis,
        trials=tuple(trials),
        pruning=tuple(decisions),
        final=tuple(finals),
        environment=environment,
    )


def publish_results(
    folder: str | Path, results: SweepResults, tracking_uri: str, parent_run_id: str
) -> PublishedResults:
    """Write the results, render the report, log both to the parent run; never raises.

    Each step that fails is logged as a warning and named in ``notes``; the steps after it
    still run where they can (the report needs the files; MLflow logs whatever was written).

    Args:
        folder: the sweep's run folder.
        results: what :func:`sweep_results` assembled.
        tracking_uri, parent_run_id: the sweep's MLflow parent run.
    """
    out = Path(folder)
    where = {
        "mlflow_database": mlflow_database(tracking_uri),
        "mlflow_ui_command": f"mlflow ui --backend-store-uri {tracking_uri}",
    }
    notes: list[str] = []
    html = markdown = None
    report_files: list[Path] = []
    try:
        save_results(out, results)
    except Exception as error:  # the sweep's runs are in Ray's storage and MLflow regardless
        logger.warning("could not write the sweep's results to %s: %s", out, error)
        notes.append(f"results not written: {error}")
        return PublishedResults(out, None, None, False, **where, notes=tuple(notes))
    try:
        paths = write_report(load_results(out), out)
        html, markdown = paths.html, paths.markdown
        report_files = [paths.html, paths.markdown, paths.recommended, *paths.images]
    except Exception as error:
        logger.warning("could not write the report in %s: %s", out, error)
        notes.append(f"report not written: {error}")
    logged = False
    try:
        log_results(out, parent_run_id, tracking_uri)
        if report_files:
            log_files(parent_run_id, tracking_uri, report_files, REPORT_ARTIFACT_PATH)
        logged = True
    except Exception as error:
        logger.warning("could not log the results to MLflow run %s: %s", parent_run_id, error)
        notes.append(f"not logged to MLflow: {error}")
    return PublishedResults(out, html, markdown, logged, **where, notes=tuple(notes))
