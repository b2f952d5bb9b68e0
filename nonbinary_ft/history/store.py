"""Where a sweep finds its history: the prior, the user's store, tables (and MLflow's tags).

Every user has a history, whatever their sweeps are called and wherever they ran:

- the **prior**: the recorded tables shipped inside the package (:data:`PRIOR_DIR`), every
  grid point of tasks of several pre-trained sources and data families;
- the **user store**: one JSON record per finished sweep (:mod:`.record`'s fields), in
  ``$NBFT_HISTORY_DIR``, else ``$XDG_DATA_HOME/nbft/history``, else
  ``~/.local/share/nbft/history`` (:func:`user_store`), written by every sweep that ends with
  evidence, so that a user's later sweeps see it under any name or folder;
- replay **tables** named in the sweep file (``sweep.search.history_tables``);
- the tracking server's tagged parent runs (:mod:`nonbinary_ft.tracking.history`).

Each past sweep says where it came from (``origin``). What a store holds is checked before
it is used (:func:`~nonbinary_ft.search.warm_start.checked_sweep`); a record that cannot be
read is skipped with one warning naming its file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from nonbinary_ft.history.record import past_sweep_from_tags
from nonbinary_ft.history.table import (
    CURVES_FILE,
    TableError,
    TaskEvidence,
    read_table,
    write_table,
)
from nonbinary_ft.results import ResultsError
from nonbinary_ft.results.schema import Missing, SweepResults
from nonbinary_ft.search.warm_start import PastSweep, checked_sweep

__all__ = [
    "PRIOR_DIR",
    "HISTORY_DIR_ENV",
    "user_store",
    "read_prior",
    "read_user_store",
    "record_sweep",
    "read_tables",
    "export_table",
    "unique",
]

logger = logging.getLogger(__name__)

PRIOR_DIR = Path(__file__).resolve().parent / "prior"
"""The tables shipped with the package (package data)."""
HISTORY_DIR_ENV = "NBFT_HISTORY_DIR"


def user_store() -> Path:
    """The user's store of finished sweeps (the module docstring says where)."""
    explicit = os.environ.get(HISTORY_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "nbft" / "history"


def _as_past(table_folder: Path, origin: str) -> PastSweep | None:
    past = checked_sweep(read_table(table_folder).as_past_sweep())
    return None if past is None else replace(past, origin=origin)


def read_prior(folder: Path = PRIOR_DIR) -> list[PastSweep]:
    """The tables shipped with the package, as past sweeps (a table that cannot be read is
    skipped with a warning: the prior must never stop a sweep)."""
    prior = []
    for table_folder in sorted(path.parent for path in folder.glob(f"*/{CURVES_FILE}")):
        try:
            past = _as_past(table_folder, "prior")
        except TableError as error:
            logger.warning("history: skipping a prior table: %s", error)
            continue
        if past is not None:
            prior.append(past)
    return prior


def _file_name(name: str, run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "sweep"
    return f"{safe}-{run_id}.json"


def record_sweep(
    tags: Mapping[str, str], name: str, run_id: str, folder: Path | None = None
) -> Path | None:
    """Keep a finished sweep's record in the user store; None when it cannot be written (a
    warning says why: the sweep's own results are not at stake)."""
    store = folder or user_store()
    record = {"name": name, "run_id": run_id, "tags": dict(tags)}
    path = store / _file_name(name, run_id)
    try:
        store.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
    except OSError as error:
        logger.warning("history: could not keep this sweep in %s (%s)", store, error)
        return None
    return path


def _read_record(path: Path) -> PastSweep | None:
    try:
        record = json.loads(path.read_text())
        name, run_id, tags = record["name"], record["run_id"], record["tags"]
        past = past_sweep_from_tags(str(name), tags, str(run_id), origin=f"user store {path}")
    except (OSError, ValueError, KeyError, TypeError, ResultsError) as error:
        logger.warning("history: skipping %s (%s)", path, error)
        return None
    return checked_sweep(past)


def read_user_store(folder: Path | None = None) -> list[PastSweep]:
    """The user's finished sweeps, newest first."""
    store = folder or user_store()
    if not store.is_dir():
        return []
    files = sorted(store.glob("*.json"), key=lambda path: -path.stat().st_mtime)
    return [past for past in map(_read_record, files) if past is not None]


def read_tables(folders: Sequence[str | Path]) -> list[PastSweep]:
    """Replay tables as past sweeps.

    Raises:
        TableError: a folder is not a table with evidence (named in the message).
    """
    checked = (_as_past(Path(folder), f"table {folder}") for folder in folders)
    return [past for past in checked if past is not None]


def unique(history: Iterable[PastSweep], exclude: str | None = None) -> list[PastSweep]:
    """The first of each past sweep (one in the user store and on the tracking server is
    one sweep: the same run id), without ``exclude`` (the sweep running now)."""
    seen: set[str] = set()
    kept = []
    for past in history:
        key = past.source or f"{past.origin}:{past.name}"
        if key in seen or (exclude and past.source == exclude):
            continue
        seen.add(key)
        kept.append(past)
    return kept


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
