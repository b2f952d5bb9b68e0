"""A sweep's run folder: the one writer and the one (lenient) reader of its results files.

A sweep writes, and ``nbft report`` reads, these files:

- ``sweep.yaml``: the resolved sweep file, as text.
- ``analysis.json``: the analysis document (the same as ``nbft recommend`` writes):
  ``table1`` (fixed-feature and from-scratch accuracy, gap, Fisher, EMD), ``regime``
  (``label``, ``provisional``, ``rule``, ``disagreements``, ...), ``recommendation``
  (``settings``, ``space``), ``scores`` (each ``{"value", "reason"}``), ``scratch_note``,
  ``fixed_feature_note``, and the probe's and features' details.
- ``trials.json``: the search trials, a list of :class:`TrialResult` with each epoch's
  :class:`EpochRecord` in ``history``.
- ``pruning.json``: a list of :class:`PruningDecision`.
- ``final.json``: a list of :class:`FinalEntry`; the binary baseline is the entry labelled
  ``"binary baseline"`` (``"binary default"`` in files of earlier versions), its ``basis``
  saying how it was chosen.
- ``environment.json``: :class:`EnvironmentInfo`.

Any file but the sweep's identity may be absent, unreadable, or hold ``{"missing": "<why>"}``:
:func:`load_results` then gives a :class:`Missing` with the reason instead of failing, so that
a report on an interrupted or partial sweep still renders.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nonbinary_ft.config.settings import SETTING_NAMES
from nonbinary_ft.errors import NbftError
from nonbinary_ft.results.schema import (
    BINARY_DEFAULT_LABEL,
    AnalysisResults,
    EnvironmentInfo,
    EpochRecord,
    FinalEntry,
    Missing,
    PruningDecision,
    SweepResults,
    TrialResult,
    finite,
)
from nonbinary_ft.vocabulary import DecisionKind, Stage, TrialStatus

__all__ = [
    "SWEEP_FILE",
    "ANALYSIS_FILE",
    "TRIALS_FILE",
    "PRUNING_FILE",
    "FINAL_FILE",
    "ENVIRONMENT_FILE",
    "RESULTS_FILES",
    "ResultsError",
    "jsonable",
    "write_json",
    "load_results",
    "save_results",
    "mean_std",
    "trial_from_document",
    "decision_from_document",
]

SWEEP_FILE = "sweep.yaml"
ANALYSIS_FILE = "analysis.json"
TRIALS_FILE = "trials.json"
PRUNING_FILE = "pruning.json"
FINAL_FILE = "final.json"
ENVIRONMENT_FILE = "environment.json"
RESULTS_FILES = (SWEEP_FILE, ANALYSIS_FILE, TRIALS_FILE, PRUNING_FILE, FINAL_FILE, ENVIRONMENT_FILE)


class ResultsError(NbftError):
    """A folder or MLflow run that holds no sweep results."""


def jsonable(value: Any) -> Any:
    """Plain JSON data: dataclasses as objects, enums and paths as strings, :class:`Missing`
    and non-finite floats as null (strict JSON has no NaN)."""
    if isinstance(value, Missing) or value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented strict JSON (via :func:`jsonable`), atomically: a process
    killed mid-write leaves the old file or none, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")
    partial.replace(path)


# --- reading ---------------------------------------------------------------------------------


def _settings(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"'settings' must be an object but got {raw!r}")
    # Known names first in the paper's order; anything else (a future setting) is kept.
    return {**{name: raw[name] for name in SETTING_NAMES if name in raw}, **dict(raw)}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def trial_from_document(raw: Mapping[str, Any]) -> TrialResult:
    """One entry of ``trials.json``; what the writer left out is recomputed from the history.

    Raises:
        KeyError, TypeError, ValueError: the entry has no trial id or a malformed value.
    """
    history = tuple(EpochRecord.from_report(item) for item in raw.get("history") or ())
    seen = [e.val_accuracy for e in history if e.val_accuracy is not None]
    last_seen = seen[-1] if seen else None
    best = finite(raw.get("best_val_accuracy"))
    time_s = finite(raw.get("time_s"))
    return TrialResult(
        trial_id=str(raw["trial_id"]),
        settings=_settings(raw.get("settings") or {}),
        status=TrialStatus.parse(raw.get("status", "error")),
        stage=Stage(raw.get("stage") or Stage.SEARCH),
        prune_reason=raw.get("prune_reason"),
        history=history,
        val_accuracy=finite(raw["val_accuracy"]) if "val_accuracy" in raw else last_seen,
        best_val_accuracy=best if best is not None else (max(seen) if seen else None),
        test_accuracy=finite(raw.get("test_accuracy")),
        time_s=time_s if time_s is not None else sum(e.epoch_time_s or 0.0 for e in history),
        started_at=finite(raw.get("started_at")),
        ended_at=finite(raw.get("ended_at")),
        node_id=raw.get("node_id"),
        seed=_int_or_none(raw.get("seed")),
        rank=_int_or_none(raw.get("rank")),
    )


def decision_from_document(raw: Mapping[str, Any]) -> PruningDecision:
    """One entry of ``pruning.json`` (files before the decision kinds were named say
    ``rule`` and ``evidence`` for ``kind`` and ``reason``)."""
    trial_id = raw.get("trial_id")
    kind = raw.get("kind", raw.get("rule"))
    return PruningDecision(
        kind=DecisionKind(kind),
        reason=raw.get("reason", raw.get("evidence")) or "",
        settings=_settings(raw.get("settings") or {}),
        trial_id=None if trial_id is None else str(trial_id),
        epoch=_int_or_none(raw.get("epoch")),
        time_s=finite(raw.get("time_s")) or 0.0,
        epochs_saved_estimate=finite(raw.get("epochs_saved_estimate")) or 0.0,
    )


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (``ddof=1``; 0 for one value; None for none)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _final(raw: Mapping[str, Any]) -> FinalEntry:
    accuracies = tuple(finite(value) for value in raw.get("test_accuracies") or ())
    errors = tuple(raw.get("errors") or ())
    errors = errors + (None,) * (len(accuracies) - len(errors))
    # Recompute what the writer left out, from the seeds that succeeded.
    mean, std = mean_std([value for value in accuracies if value is not None])
    written_mean, written_std = finite(raw.get("mean")), finite(raw.get("std"))
    label = str(raw.get("label") or "unlabelled")
    return FinalEntry(
        settings=_settings(raw.get("settings") or {}),
        # Earlier versions re-ran the sweep file's own settings under this label.
        label={"binary default": BINARY_DEFAULT_LABEL}.get(label, label),
        seeds=tuple(int(seed) for seed in raw.get("seeds") or ()),
        test_accuracies=accuracies,
        errors=errors,
        mean=written_mean if written_mean is not None else mean,
        std=written_std if written_std is not None else std,
        ensemble_accuracy=finite(raw.get("ensemble_accuracy")),
        ensemble_reason=raw.get("ensemble_reason"),
        rank=_int_or_none(raw.get("rank")),
        search_val_accuracy=finite(raw.get("search_val_accuracy")),
        basis=raw.get("basis") if isinstance(raw.get("basis"), str) else None,
    )


def _environment(doc: Any) -> EnvironmentInfo:
    if not isinstance(doc, Mapping):
        raise ValueError("must be a JSON object")
    packages = {str(k): (None if v is None else str(v)) for k, v in doc.get("packages", {}).items()}
    return EnvironmentInfo(
        packages=packages,
        code_version=str(doc.get("code_version") or "unknown"),
        seeds=tuple(int(seed) for seed in doc.get("seeds") or ()),
        hostname=doc.get("hostname"),
        started_at=None if doc.get("started_at") is None else str(doc["started_at"]),
        ended_at=None if doc.get("ended_at") is None else str(doc["ended_at"]),
        mlflow=dict(doc.get("mlflow") or {}),
    )


def _list_of(parse: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def parse_list(doc: Any) -> tuple[Any, ...]:
        if not isinstance(doc, list):
            raise ValueError("must be a JSON list")
        items = []
        for index, item in enumerate(doc):
            try:
                items.append(parse(item))
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"entry {index}: {error!r}") from None
        return tuple(items)

    return parse_list


def _read(folder: Path, name: str, parse: Callable[[Any], Any]) -> Any:
    """Parse one file, or say why it is missing; a sweep that died mid-write still reports."""
    path = folder / name
    if not path.is_file():
        return Missing(f"{name} not written (the sweep did not reach this stage, or stopped)")
    try:
        doc = json.loads(path.read_text())
        if isinstance(doc, Mapping) and set(doc) == {"missing"}:
            return Missing(str(doc["missing"]))
        return parse(doc)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        return Missing(f"{name} is unreadable: {error}")


def load_results(folder: str | Path) -> SweepResults:
    """Read a sweep's run folder; absent or broken parts come back as :class:`Missing`.

    Args:
        folder: the sweep's run folder (the one holding ``sweep.yaml`` and ``trials.json``).

    Raises:
        ResultsError: the folder does not exist, holds neither ``sweep.yaml`` nor
            ``trials.json``, or holds nothing readable (it is not a sweep folder at all).
    """
    path = Path(folder)
    if not path.is_dir():
        raise ResultsError(f"{path} is not a sweep folder: it does not exist")
    if not (path / SWEEP_FILE).is_file() and not (path / TRIALS_FILE).is_file():
        raise ResultsError(f"{path} is not a sweep folder: no {SWEEP_FILE} or {TRIALS_FILE}")
    sweep_yaml: str | Missing
    if (path / SWEEP_FILE).is_file():
        sweep_yaml = (path / SWEEP_FILE).read_text()
    else:
        sweep_yaml = Missing(f"{SWEEP_FILE} not written")
    results = SweepResults(
        source=str(path),
        sweep_yaml=sweep_yaml,
        analysis=_read(path, ANALYSIS_FILE, AnalysisResults.from_document),
        trials=_read(path, TRIALS_FILE, _list_of(trial_from_document)),
        pruning=_read(path, PRUNING_FILE, _list_of(decision_from_document)),
        final=_read(path, FINAL_FILE, _list_of(_final)),
        environment=_read(path, ENVIRONMENT_FILE, _environment),
    )
    parts = (results.analysis, results.trials, results.pruning, results.final, results.environment)
    if results.name is None and all(isinstance(part, Missing) for part in parts):
        raise ResultsError(
            f"{path} is not a sweep folder: {SWEEP_FILE} is not a sweep file (it names no "
            "sweep) and no results file could be read"
        )
    return results


# --- writing ---------------------------------------------------------------------------------


def _trial_document(trial: TrialResult) -> dict[str, Any]:
    document = jsonable(trial)
    document["history"] = [jsonable(epoch.to_report()) for epoch in trial.history]
    return document


def save_results(folder: str | Path, results: SweepResults) -> Path:
    """Write ``results`` as the run folder's files into ``folder`` (created if needed).

    A :class:`Missing` part is written as ``{"missing": "<reason>"}`` so that the reason
    survives; ``sweep.yaml`` is only written when known.

    Returns:
        The folder.

    Raises:
        OSError: the folder cannot be written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(results.sweep_yaml, Missing):
        (out / SWEEP_FILE).write_text(results.sweep_yaml)
    documents: dict[str, Any] = {
        ANALYSIS_FILE: results.analysis
        if isinstance(results.analysis, Missing)
        else results.analysis.to_document(),
        TRIALS_FILE: results.trials
        if isinstance(results.trials, Missing)
        else [_trial_document(trial) for trial in results.trials],
        PRUNING_FILE: results.pruning,
        FINAL_FILE: results.final,
        ENVIRONMENT_FILE: results.environment,
    }
    for name, document in documents.items():
        if isinstance(document, Missing):
            document = {"missing": document.reason}
        write_json(out / name, document)
    return out
