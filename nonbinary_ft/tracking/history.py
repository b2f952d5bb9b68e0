"""The history of past sweeps, kept on their MLflow parent runs, and what it exports.

Every finished sweep whose stage 1 produced evidence tags its parent run (format
:data:`HISTORY_FORMAT`):

============================  ==================================================================
tag                           value
============================  ==================================================================
``nbft.history.format``       ``1``
``nbft.history.evidence``     JSON ``{"fixed_feature_accuracy": a, "fisher": f, "gap": g}``
``nbft.history.regime``       the regime stage 1 decided (``fits_well``, ...)
``nbft.history.model``        the model's name
``nbft.history.ranked``       JSON ``[[settings, val_accuracy], ...]``: the completed search
                              trials' settings, best first (as many as fit in a tag)
============================  ==================================================================

so that ``MlflowClient.search_runs(filter_string="tags.`nbft.history.format` = '1'")``
finds them in any experiment of a tracking store. :func:`read_history` does that, and a new
sweep with search ``nbft`` starts from the nearest of them
(:mod:`nonbinary_ft.search.warm_start`). :func:`export_table` writes a past sweep's curves
in the replay table's Parquet format, so that a user's own sweeps become benchmark tasks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nonbinary_ft.replay.table import TableError, TaskEvidence, read_table, write_table
from nonbinary_ft.results import ResultsError
from nonbinary_ft.results.schema import Missing, SweepResults
from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep, checked_sweep
from nonbinary_ft.tracking.artifacts import tracking_client
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "HISTORY_FORMAT",
    "TAG_FORMAT",
    "history_tags",
    "past_sweep_from_tags",
    "read_history",
    "read_tables",
    "export_table",
]

logger = logging.getLogger(__name__)

HISTORY_FORMAT = "1"
TAG_FORMAT = "nbft.history.format"
TAG_EVIDENCE = "nbft.history.evidence"
TAG_REGIME = "nbft.history.regime"
TAG_MODEL = "nbft.history.model"
TAG_RANKED = "nbft.history.ranked"
MAX_TAG_CHARS = 5000
"""MLflow keeps tag values up to 8000 characters (5000 on older stores): stay under both."""


def _ranked_json(ranked: Sequence[tuple[dict[str, Any], float]]) -> str:
    """The longest best-first prefix whose JSON fits in a tag."""
    rows: list[list[Any]] = []
    text = "[]"
    for settings, value in ranked:
        candidate = json.dumps([*rows, [settings, round(value, 6)]], sort_keys=True)
        if len(candidate) > MAX_TAG_CHARS:
            break
        rows.append([settings, round(value, 6)])
        text = candidate
    return text


def history_tags(results: SweepResults, model: str) -> dict[str, str]:
    """The history tags of a finished sweep; empty when it has no evidence or no completed
    search trial (nothing a later sweep could start from)."""
    if isinstance(results.analysis, Missing) or isinstance(results.trials, Missing):
        return {}
    document = results.analysis.to_document()
    evidence = EvidenceVector.from_document(document)
    completed = [
        (trial.settings, value)
        for trial in results.trials
        if trial.status == TrialStatus.COMPLETED and (value := trial.final_val_accuracy) is not None
    ]
    if evidence is None or not completed:
        return {}
    completed.sort(key=lambda item: -item[1])
    regime = str((document.get("regime") or {}).get("label", "unknown"))
    gap = (document.get("table1") or {}).get("gap")
    return {
        TAG_FORMAT: HISTORY_FORMAT,
        TAG_EVIDENCE: json.dumps({**evidence.to_dict(), "gap": gap}),
        TAG_REGIME: regime,
        TAG_MODEL: model,
        TAG_RANKED: _ranked_json(completed),
    }


def past_sweep_from_tags(name: str, tags: Mapping[str, str], source: str) -> PastSweep:
    """Read one past sweep from its parent run's tags.

    Raises:
        ResultsError: the tags are not in the format above.
    """
    try:
        table1 = json.loads(tags[TAG_EVIDENCE])
        evidence = EvidenceVector.from_document({"table1": table1})
        ranked = tuple((row[0], row[1]) for row in json.loads(tags[TAG_RANKED]))
        gap = table1.get("gap")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ResultsError(f"run {source}: malformed history tags ({error})") from None
    if evidence is None:
        raise ResultsError(f"run {source}: tag {TAG_EVIDENCE} holds no usable evidence")
    regime = tags.get(TAG_REGIME, "unknown")
    gap = float(gap) if isinstance(gap, int | float) else None
    return PastSweep(name, evidence, ranked, source, regime, gap)


def read_history(tracking_uri: str, exclude_run: str | None = None) -> list[PastSweep]:
    """Every past sweep in the tracking store's experiments, newest first.

    A run whose tags are malformed is skipped with a warning, not fatal: the history is a
    hint, and one bad run must not stop a sweep.
    """
    client = tracking_client(tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.`{TAG_FORMAT}` = '{HISTORY_FORMAT}'",
        max_results=1000,
        order_by=["attributes.start_time DESC"],
    )
    history = []
    for run in runs:
        if run.info.run_id == exclude_run:
            continue
        try:
            name = run.info.run_name or run.info.run_id
            past = checked_sweep(past_sweep_from_tags(name, run.data.tags, run.info.run_id))
        except ResultsError as error:
            logger.warning("history: skipping %s", error)
            continue
        if past is not None:
            history.append(past)
    return history


def read_tables(folders: Sequence[str | Path]) -> list[PastSweep]:
    """Replay tables as past sweeps.

    Raises:
        TableError: a folder is not a table with evidence (named in the message).
    """
    checked = (checked_sweep(read_table(folder).as_past_sweep()) for folder in folders)
    return [past for past in checked if past is not None]


def export_table(results: SweepResults, folder: str | Path, num_layers: int, epochs: int) -> Path:
    """Write a finished sweep's search trials as a replay table (one point per trial).

    Raises:
        TableError: the results hold no trials.
    """
    if isinstance(results.trials, Missing) or not results.trials:
        raise TableError(f"{results.source}: no search trials to export")
    evidence = None
    if not isinstance(results.analysis, Missing):
        evidence = TaskEvidence(results.analysis.to_document(), 0.0, 0.0, 0.0)
    points = [(trial.settings, trial.history) for trial in results.trials if trial.history]
    name = results.name or Path(results.source).name
    config = results.sweep_yaml if isinstance(results.sweep_yaml, str) else ""
    return write_table(folder, name, num_layers, epochs, points, evidence, config)
