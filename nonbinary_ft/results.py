"""The contract between a sweep and its report: JSON files in the sweep's run folder.

A sweep writes, and ``nbft report`` reads, these files (accuracies are fractions in [0, 1],
times are seconds):

- ``sweep.yaml``: the resolved sweep file, as text.
- ``analysis.json``: the evidence and the regime (:class:`AnalysisResults`)::

      {"fixed_feature_accuracy": 0.83, "fixed_feature_reason": null,
       "scratch_accuracy": null, "scratch_reason": "not run: --no-scratch",
       "gap": null,
       "scores": {"fisher": {"value": 1.35, "reason": null}, "emd": {"value": null,
                  "reason": "no source sample"}},
       "regime": {"name": "fits_well", "provisional": true, "rule": "...",
                  "disagreements": ["..."]},
       "recommended_settings": {"reinit_layers": 2, ...},
       "narrowed_space": "<search space YAML text>"}

  The document of ``nbft recommend`` (``AnalysisReport.to_dict()``, recognised by its
  ``table1`` key) is accepted too and converted.
- ``trials.json``: a list of :class:`TrialResult` (``trial_id``, ``settings``, ``status``,
  ``prune_reason``, ``history`` of :class:`EpochRecord`, ``best_val_accuracy``, ``time_s``,
  ``started_at``, ``ended_at``; the last two in seconds since the sweep started).
- ``pruning.json``: a list of :class:`PruningDecision` (``trial_id`` null for a region no
  longer sampled, ``time_s``, ``rule``, ``evidence``, ``settings``, ``epochs_saved_estimate``).
- ``final.json``: a list of :class:`FinalEntry` (``settings``, ``label``, ``seeds``,
  ``test_accuracies`` with null for a failed seed, ``errors``, ``mean``, ``std``,
  ``ensemble_accuracy``); the binary default is one entry, labelled ``"binary default"``.
- ``environment.json``: :class:`EnvironmentInfo` (``packages``, ``code_version``, ``seeds``,
  ``hostname``, ``started_at``, ``ended_at``, optional ``mlflow``).

Any file but the sweep's identity may be absent, unreadable, or hold ``{"missing": "<why>"}``:
:func:`load_results` then gives a :class:`Missing` with the reason instead of failing, so that
a report on an interrupted or partial sweep still renders.
"""

from __future__ import annotations

import json
import math
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from nonbinary_ft.errors import NbftError

__all__ = [
    "SWEEP_FILE",
    "ANALYSIS_FILE",
    "TRIALS_FILE",
    "PRUNING_FILE",
    "FINAL_FILE",
    "ENVIRONMENT_FILE",
    "SETTING_NAMES",
    "BINARY_DEFAULT_LABEL",
    "ResultsError",
    "Missing",
    "is_missing",
    "ScoreValue",
    "RegimeResult",
    "AnalysisResults",
    "EpochRecord",
    "TrialResult",
    "PruningDecision",
    "FinalEntry",
    "EnvironmentInfo",
    "SweepResults",
    "load_results",
    "save_results",
    "collect_environment",
]

SWEEP_FILE = "sweep.yaml"
ANALYSIS_FILE = "analysis.json"
TRIALS_FILE = "trials.json"
PRUNING_FILE = "pruning.json"
FINAL_FILE = "final.json"
ENVIRONMENT_FILE = "environment.json"

# The order settings are shown in: the paper's (re-init, LRs, low layers, L2-SP).
SETTING_NAMES = (
    "reinit_layers",
    "lr_high",
    "lr_new",
    "low_layers",
    "lr_low",
    "l2sp_layers",
    "alpha",
    "beta",
)
BINARY_DEFAULT_LABEL = "binary default"
TrialStatus = Literal["completed", "pruned", "stopped", "diverged", "error"]
RegimeName = Literal["fits_well", "fits_poorly", "unclear"]
# Ray Tune's scheduler stop is "early_stopped" in the tuning package; the contract says
# "stopped". Unknown statuses become "error" rather than failing the whole report.
_STATUS_ALIASES = {"early_stopped": "stopped", "terminated": "completed", "failed": "error"}
_STATUSES = ("completed", "pruned", "stopped", "diverged", "error")
_PACKAGES = ("torch", "timm", "ray", "optuna", "mlflow")


class ResultsError(NbftError):
    """A folder or MLflow run that holds no sweep results."""


@dataclass(frozen=True)
class Missing:
    """A piece of the results that is not there, and why (shown as such in the report)."""

    reason: str

    def __str__(self) -> str:
        return f"missing: {self.reason}"


def is_missing(value: object) -> bool:
    """True when ``value`` is a :class:`Missing` marker."""
    return isinstance(value, Missing)


@dataclass(frozen=True)
class ScoreValue:
    """A transferability score: its value, or ``None`` and the reason it has none."""

    value: float | None
    reason: str | None = None


@dataclass(frozen=True)
class RegimeResult:
    """The analysis's decision: do the pre-trained weights fit the target well or poorly?"""

    name: RegimeName
    provisional: bool
    rule: str
    disagreements: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisResults:
    """The evidence (the paper's table 1 and other scores), the regime and its advice."""

    fixed_feature_accuracy: float | Missing
    scratch_accuracy: float | Missing
    gap: float | Missing
    scores: dict[str, ScoreValue]
    regime: RegimeResult
    recommended_settings: dict[str, Any]
    narrowed_space: str | Missing


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a trial; a value is ``None`` where it was not finite (a diverged loss)."""

    epoch: int
    train_loss: float | None = None
    val_accuracy: float | None = None
    l2sp_penalty: float | None = None
    l2_penalty: float | None = None
    epoch_time_s: float | None = None


@dataclass(frozen=True)
class TrialResult:
    """One search trial as it ended."""

    trial_id: str
    settings: dict[str, Any]
    status: TrialStatus
    prune_reason: str | None = None
    history: tuple[EpochRecord, ...] = ()
    best_val_accuracy: float | None = None
    time_s: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class PruningDecision:
    """A decision to stop a trial (``trial_id``) or to stop sampling a region (``None``)."""

    trial_id: str | None
    time_s: float
    rule: str
    evidence: str | dict[str, Any]
    settings: dict[str, Any]
    epochs_saved_estimate: float = 0.0


@dataclass(frozen=True)
class FinalEntry:
    """One setting re-run with several seeds on the test split.

    ``test_accuracies[i]`` is ``None`` when seed ``seeds[i]`` failed, ``errors[i]`` says why;
    ``std`` is the sample standard deviation (``ddof=1``) over the seeds that succeeded.
    """

    settings: dict[str, Any]
    label: str
    seeds: tuple[int, ...]
    test_accuracies: tuple[float | None, ...]
    errors: tuple[str | None, ...] = ()
    mean: float | None = None
    std: float | None = None
    ensemble_accuracy: float | None = None
    ensemble_reason: str | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    """What a sweep ran with, for reproducing it."""

    packages: dict[str, str | None]
    code_version: str
    seeds: tuple[int, ...] = ()
    hostname: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    mlflow: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepResults:
    """Everything a report is made from; each part may be :class:`Missing`."""

    source: str
    sweep_yaml: str | Missing
    analysis: AnalysisResults | Missing
    trials: tuple[TrialResult, ...] | Missing
    pruning: tuple[PruningDecision, ...] | Missing
    final: tuple[FinalEntry, ...] | Missing
    environment: EnvironmentInfo | Missing

    @property
    def name(self) -> str | None:
        """The sweep's ``name`` from ``sweep.yaml`` (None when unknown)."""
        if isinstance(self.sweep_yaml, Missing):
            return None
        try:
            document = yaml.safe_load(self.sweep_yaml)
        except yaml.YAMLError:
            return None
        return str(document["name"]) if isinstance(document, dict) and "name" in document else None


# --- reading ---------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    """A finite float, or None (JSON null, NaN and infinities all mean "no value")."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _present(value: Any, reason: Any, what: str) -> float | Missing:
    number = _float(value)
    if number is not None:
        return number
    return Missing(str(reason) if reason else f"no {what} recorded")


def _settings(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"'settings' must be an object but got {raw!r}")
    known = [name for name in SETTING_NAMES if name in raw]
    # Known names first in the paper's order; anything else (a future setting) is kept.
    return {**{name: raw[name] for name in known}, **{k: v for k, v in raw.items()}}


def _from_recommend_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Convert ``nbft recommend``'s ``analysis.json`` into this contract's shape."""
    table1 = doc.get("table1") or {}
    regime = doc.get("regime") or {}
    recommendation = doc.get("recommendation") or {}
    space = recommendation.get("space")
    return {
        "fixed_feature_accuracy": table1.get("fixed_feature_accuracy"),
        "scratch_accuracy": table1.get("from_scratch_accuracy"),
        "scratch_reason": doc.get("scratch_note") or "from-scratch baseline not run",
        "gap": table1.get("gap"),
        "scores": doc.get("scores") or {},
        "regime": {
            "name": regime.get("label", "unclear"),
            "provisional": regime.get("provisional", True),
            "rule": regime.get("rule", ""),
            "disagreements": regime.get("disagreements", []),
        },
        "recommended_settings": recommendation.get("settings") or {},
        "narrowed_space": yaml.safe_dump(space, sort_keys=False) if space else None,
    }


def _score(raw: Any) -> ScoreValue:
    if isinstance(raw, Mapping):
        value = _float(raw.get("value"))
        reason = raw.get("reason")
        return ScoreValue(value, reason if value is None else None)
    value = _float(raw)
    return ScoreValue(value, None if value is not None else "no value recorded")


def _analysis(doc: Any) -> AnalysisResults:
    if not isinstance(doc, Mapping):
        raise ValueError("must be a JSON object")
    if "table1" in doc:
        doc = _from_recommend_document(doc)
    fixed = _present(doc.get("fixed_feature_accuracy"), doc.get("fixed_feature_reason"), "probe")
    scratch = _present(
        doc.get("scratch_accuracy"), doc.get("scratch_reason"), "from-scratch accuracy"
    )
    gap: float | Missing
    if _float(doc.get("gap")) is not None:
        gap = float(doc["gap"])
    elif isinstance(fixed, float) and isinstance(scratch, float):
        gap = scratch - fixed
    else:
        gap = Missing("needs both the fixed-feature and the from-scratch accuracy")
    regime = doc.get("regime") or {}
    name = regime.get("name", "unclear")
    return AnalysisResults(
        fixed_feature_accuracy=fixed,
        scratch_accuracy=scratch,
        gap=gap,
        scores={str(key): _score(value) for key, value in (doc.get("scores") or {}).items()},
        regime=RegimeResult(
            name=name if name in ("fits_well", "fits_poorly") else "unclear",
            provisional=bool(regime.get("provisional", True)),
            rule=str(regime.get("rule") or "no rule recorded"),
            disagreements=tuple(str(item) for item in regime.get("disagreements") or ()),
        ),
        recommended_settings=_settings(doc.get("recommended_settings") or {}),
        narrowed_space=doc.get("narrowed_space") or Missing("no narrowed space recorded"),
    )


def _status(raw: Any) -> TrialStatus:
    status = _STATUS_ALIASES.get(str(raw), str(raw))
    return status if status in _STATUSES else "error"  # type: ignore[return-value]


def _epoch(raw: Mapping[str, Any]) -> EpochRecord:
    return EpochRecord(
        epoch=int(raw["epoch"]),
        **{
            name: _float(raw.get(name))
            for name in ("train_loss", "val_accuracy", "l2sp_penalty", "l2_penalty", "epoch_time_s")
        },
    )


def _trial(raw: Mapping[str, Any]) -> TrialResult:
    history = tuple(_epoch(item) for item in raw.get("history") or ())
    best = _float(raw.get("best_val_accuracy"))
    if best is None:
        seen = [e.val_accuracy for e in history if e.val_accuracy is not None]
        best = max(seen) if seen else None
    time_s = _float(raw.get("time_s"))
    if time_s is None:
        time_s = sum(e.epoch_time_s or 0.0 for e in history)
    return TrialResult(
        trial_id=str(raw["trial_id"]),
        settings=_settings(raw.get("settings") or {}),
        status=_status(raw.get("status", "error")),
        prune_reason=raw.get("prune_reason"),
        history=history,
        best_val_accuracy=best,
        time_s=time_s,
        started_at=_float(raw.get("started_at")),
        ended_at=_float(raw.get("ended_at")),
    )


def _decision(raw: Mapping[str, Any]) -> PruningDecision:
    trial_id = raw.get("trial_id")
    return PruningDecision(
        trial_id=None if trial_id is None else str(trial_id),
        time_s=_float(raw.get("time_s")) or 0.0,
        rule=str(raw.get("rule") or ""),
        evidence=raw.get("evidence") or "",
        settings=_settings(raw.get("settings") or {}),
        epochs_saved_estimate=_float(raw.get("epochs_saved_estimate")) or 0.0,
    )


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _or(value: float | None, default: float | None) -> float | None:
    return value if value is not None else default


def _final(raw: Mapping[str, Any]) -> FinalEntry:
    accuracies = tuple(_float(value) for value in raw.get("test_accuracies") or ())
    seeds = tuple(int(seed) for seed in raw.get("seeds") or ())
    errors = tuple(raw.get("errors") or ())
    errors = errors + (None,) * (len(accuracies) - len(errors))
    # Recompute what the writer left out, from the seeds that succeeded.
    mean, std = _mean_std([value for value in accuracies if value is not None])
    return FinalEntry(
        settings=_settings(raw.get("settings") or {}),
        label=str(raw.get("label") or "unlabelled"),
        seeds=seeds,
        test_accuracies=accuracies,
        errors=errors,
        mean=_or(_float(raw.get("mean")), mean),
        std=_or(_float(raw.get("std")), std),
        ensemble_accuracy=_float(raw.get("ensemble_accuracy")),
        ensemble_reason=raw.get("ensemble_reason"),
    )


def _environment(doc: Any) -> EnvironmentInfo:
    if not isinstance(doc, Mapping):
        raise ValueError("must be a JSON object")
    packages = {str(k): (None if v is None else str(v)) for k, v in doc.get("packages", {}).items()}
    if "python" in doc and "python" not in packages:
        packages["python"] = str(doc["python"])
    return EnvironmentInfo(
        packages=packages,
        code_version=str(doc.get("code_version") or "unknown"),
        seeds=tuple(int(seed) for seed in doc.get("seeds") or ()),
        hostname=doc.get("hostname"),
        started_at=None if doc.get("started_at") is None else str(doc["started_at"]),
        ended_at=None if doc.get("ended_at") is None else str(doc["ended_at"]),
        mlflow=dict(doc.get("mlflow") or {}),
    )


def _list_of(parse: Any) -> Any:
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


def _read(folder: Path, name: str, parse: Any) -> Any:
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
        ResultsError: the folder does not exist, or holds neither ``sweep.yaml`` nor
            ``trials.json`` (it is not a sweep folder at all).
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
    return SweepResults(
        source=str(path),
        sweep_yaml=sweep_yaml,
        analysis=_read(path, ANALYSIS_FILE, _analysis),
        trials=_read(path, TRIALS_FILE, _list_of(_trial)),
        pruning=_read(path, PRUNING_FILE, _list_of(_decision)),
        final=_read(path, FINAL_FILE, _list_of(_final)),
        environment=_read(path, ENVIRONMENT_FILE, _environment),
    )


# --- writing ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON: Missing -> null, non-finite floats -> null (strict JSON has no NaN)."""
    if isinstance(value, Missing):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def _analysis_document(analysis: AnalysisResults) -> dict[str, Any]:
    def reason(value: object) -> str | None:
        return value.reason if isinstance(value, Missing) else None

    document = _jsonable(analysis)
    document["fixed_feature_reason"] = reason(analysis.fixed_feature_accuracy)
    document["scratch_reason"] = reason(analysis.scratch_accuracy)
    return document


def _write(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")


def save_results(folder: str | Path, results: SweepResults) -> None:
    """Write ``results`` as the contract's files into ``folder`` (created if needed).

    A :class:`Missing` part is written as ``{"missing": "<reason>"}`` so that the reason
    survives; ``sweep.yaml`` is only written when known.

    Raises:
        OSError: the folder cannot be written.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(results.sweep_yaml, Missing):
        (out / SWEEP_FILE).write_text(results.sweep_yaml)
    parts = {
        ANALYSIS_FILE: results.analysis,
        TRIALS_FILE: results.trials,
        PRUNING_FILE: results.pruning,
        FINAL_FILE: results.final,
        ENVIRONMENT_FILE: results.environment,
    }
    for name, part in parts.items():
        if isinstance(part, Missing):
            _write(out / name, {"missing": part.reason})
        elif isinstance(part, AnalysisResults):
            _write(out / name, _analysis_document(part))
        else:
            _write(out / name, _jsonable(part))


def _code_version() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    version = metadata.version("nonbinary-ft")
    # An installed wheel has no git checkout: the package version is all there is.
    return f"{version} ({described})" if described else version


def collect_environment(
    seeds: Sequence[int] = (),
    started_at: str | None = None,
    ended_at: str | None = None,
    mlflow: Mapping[str, str | None] | None = None,
) -> EnvironmentInfo:
    """The running process's environment, for the sweep to write as ``environment.json``.

    Args:
        seeds: the seeds the sweep used (training seed and the final runs' seeds).
        started_at, ended_at: wall-clock times, ISO 8601.
        mlflow: ``tracking_uri``, ``experiment`` and ``parent_run_id`` of the sweep's runs.
    """
    packages: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return EnvironmentInfo(
        packages=packages,
        code_version=_code_version(),
        seeds=tuple(seeds),
        hostname=socket.gethostname(),
        started_at=started_at,
        ended_at=ended_at,
        mlflow=dict(mlflow or {}),
    )
