"""The types of a sweep's results: what a trial reports, how it ended, and what the sweep found.

The same types travel the whole way: the trial reports :class:`EpochRecord` s, the sweep
builds :class:`TrialResult` s and :class:`FinalEntry` s from them, the pruning policy records
:class:`PruningDecision` s, and :mod:`nonbinary_ft.results.io` writes and reads them as the
run folder's files (listed there). Accuracies are fractions in [0, 1], times are seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nonbinary_ft.vocabulary import DecisionKind, RegimeLabel, Stage, TrialStatus

__all__ = [
    "BINARY_DEFAULT_LABEL",
    "BEST_LABEL",
    "Missing",
    "is_missing",
    "finite",
    "ScoreValue",
    "RegimeResult",
    "AnalysisResults",
    "EpochRecord",
    "TrialResult",
    "PruningDecision",
    "FinalEntry",
    "EnvironmentInfo",
    "SweepResults",
]

BINARY_DEFAULT_LABEL = "binary baseline"
BEST_LABEL = "best"


def finite(value: Any) -> float | None:
    """A finite float, or None (None, booleans, NaN, infinities and non-numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


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

    name: RegimeLabel
    provisional: bool
    rule: str
    disagreements: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisResults:
    """The evidence (the paper's table 1 and other scores), the regime and its advice.

    Attributes:
        extra: the rest of the analysis document (probe details, feature summary, ...),
            kept so that reading and writing it again loses nothing.
    """

    fixed_feature_accuracy: float | Missing
    scratch_accuracy: float | Missing
    gap: float | Missing
    scores: dict[str, ScoreValue]
    regime: RegimeResult
    recommended_settings: dict[str, Any]
    narrowed_space: str | Missing
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AnalysisResults:
        """Read the analysis document (``analysis.json``, ``nbft recommend --json``).

        Raises:
            ValueError: the document is not a JSON object.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("must be a JSON object")
        table1 = doc.get("table1") or {}
        regime = doc.get("regime") or {}
        recommendation = doc.get("recommendation") or {}
        fixed = _present(table1.get("fixed_feature_accuracy"), doc.get("fixed_feature_note"))
        scratch = _present(
            table1.get("from_scratch_accuracy"),
            doc.get("scratch_note") or "from-scratch baseline not run",
        )
        gap: float | Missing = _present(table1.get("gap"), None)
        if is_missing(gap):
            gap = Missing("needs both the fixed-feature and the from-scratch accuracy")
            if isinstance(fixed, float) and isinstance(scratch, float):
                gap = scratch - fixed
        space = recommendation.get("space")
        return cls(
            fixed_feature_accuracy=fixed,
            scratch_accuracy=scratch,
            gap=gap,
            scores={str(k): _score(v) for k, v in (doc.get("scores") or {}).items()},
            regime=RegimeResult(
                name=RegimeLabel.parse(regime.get("label")),
                provisional=bool(regime.get("provisional", True)),
                rule=str(regime.get("rule") or "no rule recorded"),
                disagreements=tuple(str(item) for item in regime.get("disagreements") or ()),
            ),
            recommended_settings=dict(recommendation.get("settings") or {}),
            narrowed_space=yaml.safe_dump(space, sort_keys=False)
            if space
            else Missing("no narrowed space recorded"),
            extra=dict(doc),
        )

    def to_document(self) -> dict[str, Any]:
        """The analysis document: :meth:`from_document` of it gives these results back."""
        document = dict(self.extra)

        def value(part: float | Missing) -> float | None:
            return None if isinstance(part, Missing) else part

        def note(part: float | Missing) -> str | None:
            return part.reason if isinstance(part, Missing) else None

        document["table1"] = {
            **dict(document.get("table1") or {}),
            "fixed_feature_accuracy": value(self.fixed_feature_accuracy),
            "from_scratch_accuracy": value(self.scratch_accuracy),
            "gap": value(self.gap),
        }
        document["fixed_feature_note"] = note(self.fixed_feature_accuracy)
        document["scratch_note"] = note(self.scratch_accuracy)
        document["scores"] = {
            name: {**dict((document.get("scores") or {}).get(name) or {}), **vars(score)}
            for name, score in self.scores.items()
        }
        document["regime"] = {
            **dict(document.get("regime") or {}),
            "label": str(self.regime.name),
            "provisional": self.regime.provisional,
            "rule": self.regime.rule,
            "disagreements": list(self.regime.disagreements),
        }
        space = None if isinstance(self.narrowed_space, Missing) else self.narrowed_space
        document["recommendation"] = {
            **dict(document.get("recommendation") or {}),
            "settings": dict(self.recommended_settings),
            "space": yaml.safe_load(space) if space else None,
        }
        return document


def _present(value: Any, reason: Any) -> float | Missing:
    number = finite(value)
    if number is not None:
        return number
    return Missing(str(reason) if reason else "not recorded")


def _score(raw: Any) -> ScoreValue:
    if isinstance(raw, Mapping):
        number = finite(raw.get("value"))
        return ScoreValue(number, raw.get("reason") if number is None else None)
    number = finite(raw)
    return ScoreValue(number, None if number is not None else "no value recorded")


_METRICS = (
    "train_loss",
    "val_accuracy",
    "l2sp_penalty",
    "l2_penalty",
    "epoch_time_s",
    "train_accuracy",
    "val_loss",
    "test_loss",
    "test_accuracy",
    "images_per_s",
)
_LR_PREFIX = "lr_"


@dataclass(frozen=True)
class EpochRecord:
    """What a trial reports after each epoch; a value is ``None`` where it is not finite.

    Attributes:
        epoch_time_s: seconds of the epoch's training and validation (what it costs a
            sweep; a test pass is not counted).
        lrs: the learning rate each param group started the epoch at, by role ('new',
            'high', 'low'); reported as ``lr_<role>``.
        status: ``running``, or the trial's ending (``completed`` with the test accuracy on
            the last epoch, ``diverged``).
    """

    epoch: int
    train_loss: float | None = None
    val_accuracy: float | None = None
    l2sp_penalty: float | None = None
    l2_penalty: float | None = None
    epoch_time_s: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    images_per_s: float | None = None
    lrs: Mapping[str, float] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.RUNNING

    def to_report(self) -> dict[str, Any]:
        """The flat metrics dict a reporter sends (Ray Tune's ``report``, MLflow, JSON)."""
        metrics: dict[str, Any] = {"epoch": self.epoch}
        metrics.update({name: getattr(self, name) for name in _METRICS})
        metrics.update({f"{_LR_PREFIX}{role}": lr for role, lr in self.lrs.items()})
        metrics["status"] = str(self.status)
        metrics["done"] = self.status.ended
        return metrics

    @classmethod
    def from_report(cls, raw: Mapping[str, Any]) -> EpochRecord:
        """Read a reported metrics dict back (extra keys, e.g. Ray's bookkeeping, ignored).

        Raises:
            KeyError, ValueError: no epoch number.
        """
        lrs = {
            key.removeprefix(_LR_PREFIX): float(value)
            for key, value in raw.items()
            if key.startswith(_LR_PREFIX) and finite(value) is not None
        }
        return cls(
            epoch=int(raw["epoch"]),
            **{name: finite(raw.get(name)) for name in _METRICS},
            lrs=lrs,
            status=TrialStatus.parse(raw.get("status", "running")),
        )


@dataclass(frozen=True)
class TrialResult:
    """One trial of the sweep (a search trial, or a seeded final run) as it ended.

    Attributes:
        val_accuracy: the validation accuracy of its last reported epoch.
        best_val_accuracy: the best over its epochs.
        time_s: seconds it ran; ``started_at`` and ``ended_at`` count from the sweep's start.
        node_id: the Ray node it last ran on.
        seed, rank: a final run's training seed and the rank of its settings (0: the
            sweep file's own settings, the baseline).
    """

    trial_id: str
    settings: dict[str, Any]
    status: TrialStatus
    prune_reason: str | None = None
    history: tuple[EpochRecord, ...] = ()
    best_val_accuracy: float | None = None
    time_s: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    stage: Stage = Stage.SEARCH
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    node_id: str | None = None
    seed: int | None = None
    rank: int | None = None

    @property
    def epochs(self) -> int:
        """Epochs it trained."""
        return self.history[-1].epoch if self.history else 0

    @property
    def final_val_accuracy(self) -> float | None:
        """The validation accuracy it ended with: ``val_accuracy``, else its last epoch's."""
        if self.val_accuracy is not None:
            return self.val_accuracy
        return self.history[-1].val_accuracy if self.history else None


@dataclass(frozen=True)
class PruningDecision:
    """A decision not to start a suggestion, or to stop a running trial, and why.

    Attributes:
        kind: see :class:`~nonbinary_ft.vocabulary.DecisionKind`.
        reason: why, in words, with the evidence.
        settings: the settings concerned.
        trial_id: the trial stopped (None for a suggestion never started).
        epoch: the epoch at which a running trial was stopped.
        time_s: seconds since the sweep started.
        epochs_saved_estimate: training epochs the decision spared.
    """

    kind: DecisionKind
    reason: str
    settings: dict[str, Any]
    trial_id: str | None = None
    epoch: int | None = None
    time_s: float = 0.0
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
    rank: int | None = None
    search_val_accuracy: float | None = None
    basis: str | None = None
    """For the binary baseline: how it was chosen (the search's best binary point, or its
    own learning-rate search), in words."""


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
