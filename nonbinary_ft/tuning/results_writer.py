"""The end of a sweep: its results as the report's contract files, the report, and MLflow.

:func:`write_sweep_results` turns a :class:`~nonbinary_ft.tuning.orchestrate.SweepResult`
into the files of :mod:`nonbinary_ft.results` (``sweep.yaml``, ``analysis.json``,
``trials.json``, ``pruning.json``, ``final.json``, ``environment.json``) in the sweep's run
folder. :func:`publish_results` is what ``run_sweep`` calls: it writes them, renders the report
next to them and logs both to the sweep's MLflow parent run. A failure after the files are
written (the report, MLflow) is logged as a warning and never loses the sweep's results.

Stage 3 also re-runs the sweep file's own ``settings:`` (for the quickstart: head-only re-init,
one LR, plain L2, the binary default) with the same seeds, so that the report's gain over the
binary default is measured in the same sweep; :func:`binary_default_point` and
:func:`same_settings` are the orchestrator's side of that.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nonbinary_ft.results import (
    ANALYSIS_FILE,
    BINARY_DEFAULT_LABEL,
    ENVIRONMENT_FILE,
    FINAL_FILE,
    PRUNING_FILE,
    SETTING_NAMES,
    SWEEP_FILE,
    TRIALS_FILE,
    collect_environment,
)

if TYPE_CHECKING:
    from nonbinary_ft.config import ExperimentConfig
    from nonbinary_ft.tuning.orchestrate import FinalSummary, SweepResult, TrialSummary
    from nonbinary_ft.tuning.pruning import PruneDecision

__all__ = [
    "BEST_LABEL",
    "analysis_document",
    "mlflow_database",
    "PublishedResults",
    "binary_default_point",
    "same_settings",
    "trial_histories",
    "write_sweep_results",
    "publish_results",
]

logger = logging.getLogger(__name__)

BEST_LABEL = "best"
NO_ANALYSIS = "stage 1 (the analysis) did not run in this sweep"
# The per-epoch values the contract keeps (EpochRecord), from each reported result.
HISTORY_KEYS = ("train_loss", "val_accuracy", "l2sp_penalty", "l2_penalty", "epoch_time_s")
_STATUSES = {"early_stopped": "stopped", "running": "stopped", "pending": "stopped"}


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (paths as strings)."""
        return {
            "folder": str(self.folder),
            "report_html": None if self.report_html is None else str(self.report_html),
            "report_markdown": None if self.report_markdown is None else str(self.report_markdown),
            "logged_to_mlflow": self.logged_to_mlflow,
            "mlflow_database": None if self.mlflow_database is None else str(self.mlflow_database),
            "mlflow_ui_command": self.mlflow_ui_command,
            "notes": list(self.notes),
        }


# --- the binary default in stage 3 -----------------------------------------------------------


def _canonical(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with the values that change nothing dropped, so that equal runs compare equal."""
    known = {name: settings.get(name) for name in SETTING_NAMES}
    if known.get("lr_new") is None:
        known["lr_new"] = known.get("lr_high")
    if not known.get("low_layers"):
        known["low_layers"], known["lr_low"] = 0, None
    if not known.get("l2sp_layers"):
        known["l2sp_layers"], known["alpha"] = 0, None  # alpha is unused without L2-SP
    return {name: (float(v) if isinstance(v, float) else v) for name, v in known.items()}


def same_settings(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two trials' settings train the same way (``lr_new=None`` is ``lr_high``, ...)."""
    return _canonical(first) == _canonical(second)


def binary_default_point(config: ExperimentConfig) -> dict[str, Any]:
    """The sweep file's own ``settings:`` as a trial config (None values left out)."""
    return {k: v for k, v in config.settings.model_dump().items() if v is not None}


def analysis_document(stage: Any) -> Mapping[str, Any] | None:
    """Stage 1's ``analysis.json`` document (``stage.document()``); None when it did not run.

    An actor that failed gives a ``{"missing": ...}`` marker with the error instead of raising:
    the sweep's results are written either way.
    """
    if stage is None:
        return None
    try:
        document = stage.document()
    except Exception as error:
        logger.warning("could not read the analysis actor's results: %s", error)
        return {"missing": f"the analysis actor failed: {str(error).splitlines()[0][:300]}"}
    return document if document is not None else {"missing": "the analysis gave no results"}


# --- reading the search trials' per-epoch results --------------------------------------------


def _finite(value: Any) -> float | None:
    # numbers.Real also takes numpy's scalars (Ray's metrics dataframe holds those).
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _rows_of(result: Any) -> list[dict[str, Any]]:
    """Every result a trial reported: Ray's dataframe, else the trial folder's result.json."""
    frame = getattr(result, "metrics_dataframe", None)
    if frame is not None and len(frame):
        return [dict(row) for row in frame.to_dict(orient="records")]
    path = Path(str(getattr(result, "path", "") or "")) / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trial_histories(grid: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    """Each trial's reported results in epoch order (the last report of an epoch wins).

    Args:
        grid: a stage's ``ResultGrid`` (or any iterable of Ray ``Result`` objects).

    Returns:
        trial id -> the results, one per epoch.
    """
    histories: dict[str, list[dict[str, Any]]] = {}
    for result in grid:
        metrics = result.metrics or {}
        trial_id = str(metrics.get("trial_id") or Path(str(result.path)).name)
        try:
            rows = _rows_of(result)
        except (OSError, ValueError) as error:
            logger.warning("could not read the results of trial %s: %s", trial_id, error)
            rows = []
        by_epoch: dict[int, dict[str, Any]] = {}
        for row in rows:
            epoch = _finite(row.get("epoch"))
            if epoch is not None and epoch >= 1:
                by_epoch[int(epoch)] = row  # a replayed or resumed epoch replaces the earlier
        histories[trial_id] = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    return histories


# --- the contract's documents ----------------------------------------------------------------


def _relative(value: Any, origin: float) -> float | None:
    number = _finite(value)
    return None if number is None else round(number - origin, 3)


def _trial_document(
    trial: TrialSummary,
    rows: Sequence[Mapping[str, Any]],
    decisions: Sequence[PruneDecision],
    started_at: float,
) -> dict[str, Any]:
    history = [
        {"epoch": int(row["epoch"]), **{key: _finite(row.get(key)) for key in HISTORY_KEYS}}
        for row in rows
    ]
    reason = trial.prune_reason
    if reason is None and trial.status in ("pruned", "early_stopped"):
        reason = next((d.reason for d in decisions if d.trial_id == trial.trial_id), None)
    starts = [t for t in (_finite(row.get("started_at")) for row in rows) if t is not None]
    ends = [t for t in (_finite(row.get("reported_at")) for row in rows) if t is not None]
    begin = _relative(min(starts), started_at) if starts else None
    end = _relative(max(ends), started_at) if ends else None
    seen = [record["val_accuracy"] for record in history if record["val_accuracy"] is not None]
    epoch_time = sum(record["epoch_time_s"] or 0.0 for record in history)
    return {
        "trial_id": trial.trial_id,
        "settings": dict(trial.settings),
        "status": _STATUSES.get(trial.status, trial.status),
        "prune_reason": reason,
        "history": history,
        "best_val_accuracy": max(seen) if seen else _finite(trial.val_accuracy),
        "time_s": round(end - begin, 3) if begin is not None and end is not None else epoch_time,
        "started_at": begin,
        "ended_at": end,
    }


def _decision_document(decision: PruneDecision, epochs: int, started_at: float) -> dict[str, Any]:
    # A sample never started saves every epoch; a stopped trial the epochs it had left.
    saved = epochs if decision.epoch is None else max(epochs - decision.epoch, 0)
    return {
        "trial_id": decision.trial_id,
        "time_s": max(round(decision.time - started_at, 3), 0.0) if decision.time else 0.0,
        "rule": decision.kind,
        "evidence": decision.reason,
        "settings": dict(decision.settings),
        "epochs_saved_estimate": float(saved),
    }


def _final_labels(final: FinalSummary, config: ExperimentConfig) -> list[str]:
    """Rank 0 is the binary default's own rank; a top rank with the same settings gets both."""
    if final.rank == 0:
        return [BINARY_DEFAULT_LABEL]
    labels = [BEST_LABEL if final.rank == 1 else f"rank {final.rank}"]
    if same_settings(final.settings, config.settings.model_dump()):
        labels.append(BINARY_DEFAULT_LABEL)
    return labels


def _seed_outcomes(
    final: FinalSummary, result: SweepResult
) -> tuple[list[float | None], list[str | None]]:
    """Each seed's test accuracy, or None and why (a failed or unfinished seed)."""
    by_seed = {t.seed: t for t in result.final_trials if t.rank == final.rank}
    accuracies: list[float | None] = []
    errors: list[str | None] = []
    for seed in final.seeds:
        trial = by_seed.get(seed)
        accuracy = None if trial is None else _finite(trial.test_accuracy)
        accuracies.append(accuracy)
        if accuracy is not None:
            errors.append(None)
        elif trial is None:
            errors.append("no result")
        else:
            errors.append(trial.status + (f": {trial.prune_reason}" if trial.prune_reason else ""))
    return accuracies, errors


def _final_documents(result: SweepResult, config: ExperimentConfig) -> list[dict[str, Any]]:
    """One entry per label: a top setting that is also the binary default appears twice."""
    entries = []
    for final in sorted(result.finals, key=lambda f: (f.rank == 0, f.rank)):
        accuracies, errors = _seed_outcomes(final, result)
        for label in _final_labels(final, config):
            entries.append(
                {
                    "settings": dict(final.settings),
                    "label": label,
                    "seeds": list(final.seeds),
                    "test_accuracies": accuracies,
                    "errors": errors,
                    "mean": _finite(final.mean),
                    "std": _finite(final.std),
                    "ensemble_accuracy": _finite(final.ensemble_accuracy),
                    "ensemble_reason": None
                    if final.ensemble_accuracy is not None
                    else "not every seed's test predictions were available",
                    "rank": final.rank,
                    "search_val_accuracy": _finite(final.search_val_accuracy),
                }
            )
    return entries


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat()


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def write_sweep_results(
    folder: str | Path,
    config: ExperimentConfig,
    source: str | Path | None,
    result: SweepResult,
    analysis_document: Mapping[str, Any] | None,
    started_at: float,
    ended_at: float,
    histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Path:
    """Write the contract's files (:mod:`nonbinary_ft.results`) of a finished sweep.

    Args:
        folder: the sweep's run folder (created if needed).
        config: the sweep file, validated.
        source: its path; ``sweep.yaml`` is its text (the config dumped as YAML without one).
        result: what ``run_sweep`` produced (stage 3 may have been skipped).
        analysis_document: stage 1's ``analysis.json`` document; None writes a ``missing``
            marker saying that the analysis did not run.
        started_at, ended_at: the sweep's start and end, seconds since the epoch; trial and
            decision times are written relative to ``started_at``.
        histories: trial id -> the trial's reported results (:func:`trial_histories`); None
            reads each search trial's ``result.json`` under the sweep's local storage.

    Returns:
        The folder.

    Raises:
        OSError: the folder cannot be written.
    """
    import yaml

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if source is not None and Path(source).is_file():
        (out / SWEEP_FILE).write_text(Path(source).read_text())
    else:
        dumped = config.model_dump(mode="json", exclude_none=True)
        (out / SWEEP_FILE).write_text(yaml.safe_dump(dumped, sort_keys=False))
    _write_json(
        out / ANALYSIS_FILE,
        dict(analysis_document) if analysis_document is not None else {"missing": NO_ANALYSIS},
    )
    if histories is None:
        histories = _stored_histories(result)
    decisions = list(result.decisions)
    _write_json(
        out / TRIALS_FILE,
        [
            _trial_document(trial, histories.get(trial.trial_id, ()), decisions, started_at)
            for trial in result.trials
        ],
    )
    _write_json(
        out / PRUNING_FILE,
        [_decision_document(d, config.train.epochs, started_at) for d in decisions],
    )
    _write_json(out / FINAL_FILE, _final_documents(result, config))
    final_seeds = config.sweep.final.seeds if config.sweep is not None else ()
    seeds = [config.train.seed, *(s for s in final_seeds if s != config.train.seed)]
    environment = collect_environment(
        seeds=seeds,
        started_at=_iso(started_at),
        ended_at=_iso(ended_at),
        mlflow={
            "tracking_uri": result.tracking_uri,
            "experiment": result.mlflow_experiment,
            "parent_run_id": result.parent_run_id,
        },
    )
    _write_json(out / ENVIRONMENT_FILE, _plain(environment))
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _stored_histories(result: SweepResult) -> dict[str, list[dict[str, Any]]]:
    """Read ``<storage>/search/<trial>/result.json`` (local storage only; S3 gives none)."""

    @dataclass
    class _Stored:
        path: str
        metrics: dict[str, Any]

    search = Path(result.storage) / "search"
    stored = [_Stored(str(search / t.trial_id), {"trial_id": t.trial_id}) for t in result.trials]
    return trial_histories(stored)


def publish_results(
    folder: str | Path,
    config: ExperimentConfig,
    source: str | Path | None,
    result: SweepResult,
    analysis_document: Mapping[str, Any] | None,
    started_at: float,
    ended_at: float,
    histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> PublishedResults:
    """Write the results, render the report, log both to the parent run; never raises.

    Each step that fails is logged as a warning and named in ``notes``; the steps after it
    still run where they can (the report needs the files; MLflow logs whatever was written).
    The arguments are those of :func:`write_sweep_results`.
    """
    from nonbinary_ft.reporting import write_report
    from nonbinary_ft.reporting.mlflow_source import REPORT_ARTIFACT_PATH, log_files, log_results
    from nonbinary_ft.results import load_results

    out = Path(folder)
    where = {
        "mlflow_database": mlflow_database(result.tracking_uri),
        "mlflow_ui_command": f"mlflow ui --backend-store-uri {result.tracking_uri}",
    }
    notes: list[str] = []
    html = markdown = None
    report_files: list[Path] = []
    try:
        write_sweep_results(
            out, config, source, result, analysis_document, started_at, ended_at, histories
        )
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
        log_results(out, result.parent_run_id, result.tracking_uri)
        if report_files:
            log_files(result.parent_run_id, result.tracking_uri, report_files, REPORT_ARTIFACT_PATH)
        logged = True
    except Exception as error:
        logger.warning(
            "could not log the results to MLflow run %s: %s", result.parent_run_id, error
        )
        notes.append(f"not logged to MLflow: {error}")
    return PublishedResults(out, html, markdown, logged, **where, notes=tuple(notes))


def mlflow_database(tracking_uri: str) -> Path | None:
    """The SQLite file of a ``sqlite:///`` tracking URI; None for any other store."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None
