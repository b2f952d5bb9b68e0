"""The report as data: pure functions from :class:`SweepResults` to small frozen records.

Every number shown is computed here (and tested here); the renderers only lay the records out.
Tables carry their cells as display text, so that HTML and Markdown show the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nonbinary_ft.config.settings import same_settings
from nonbinary_ft.config.sweep import SearchConfig
from nonbinary_ft.reporting import figures, text
from nonbinary_ft.reporting.figures import FigureRecord
from nonbinary_ft.reporting.importance import importance_chart
from nonbinary_ft.reporting.verdict import Verdict, build_verdict, sweep_document
from nonbinary_ft.results import (
    AnalysisResults,
    EnvironmentInfo,
    Missing,
    PruningDecision,
    SweepResults,
    TrialResult,
)
from nonbinary_ft.search.algorithms import ALGORITHMS, analysis_with_search
from nonbinary_ft.vocabulary import DecisionKind, TrialStatus

__all__ = [
    "PAPER_TABLE1",
    "Table",
    "EvidenceSection",
    "PruningSection",
    "ReproSection",
    "Report",
    "build_evidence",
    "build_search_note",
    "build_pruning",
    "build_trials_table",
    "build_reproducibility",
    "build_figures",
    "build_report",
]

# The paper's table 1 (Inception v4, ImageNet): target, fixed-feature %, from-scratch %,
# gap (points), Fisher, EMD similarity, regime by table 7. Shown under this target's row so
# that its gap can be read against the paper's -16.2 / -7.8 (fit well) and +28.5 / +28.9.
PAPER_TABLE1 = (
    ("Caltech256-30 (paper)", "83.4 %", "67.2 %", "-16.2 points", "1.35", "0.568", "fits_well"),
    ("Stanford Cars (paper)", "64.2 %", "92.7 %", "+28.5 points", "1.18", "0.536", "fits_poorly"),
    ("FGVC Aircraft (paper)", "59.9 %", "88.8 %", "+28.9 points", "0.83", "0.557", "fits_poorly"),
    ("DTD (paper)", "74.6 %", "66.8 %", "-7.8 points", "3.47", "0.540", "fits_well"),
)
SCORE_NAMES = {
    "fisher": "normalised Fisher",
    "emd": "EMD similarity",
    "logme": "LogME",
    "leep": "LEEP",
    "nce": "NCE",
    "h_score": "H-score",
    "rsa_delta": "RSA delta",
    "sum_of_squares": "sum of squares",
    "intrinsic_dim": "intrinsic dimension (TwoNN)",
}


@dataclass(frozen=True)
class Table:
    """A table as display text: column names and rows of cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class EvidenceSection:
    """The paper's table 1 for this target, the other scores and the rule that decided."""

    missing: str | None
    table1: Table
    scores: Table
    rule: str
    disagreements: tuple[str, ...]


@dataclass(frozen=True)
class PruningSection:
    """The pruning decisions and the compute they saved."""

    missing: str | None
    summary: str
    table: Table
    epochs_saved: float
    mean_epoch_s: float | None
    compute_saved_s: float | None


@dataclass(frozen=True)
class ReproSection:
    """Package versions, seeds, code version and the sweep file."""

    missing: str | None
    facts: Table
    packages: Table
    sweep_yaml: str | None
    sweep_missing: str | None


@dataclass(frozen=True)
class Report:
    """Everything the report shows, in order."""

    title: str
    source: str
    verdict: Verdict
    evidence: EvidenceSection
    figures: tuple[FigureRecord, ...]
    search: str
    pruning: PruningSection
    trials: Table | None
    trials_missing: str | None
    reproducibility: ReproSection


def _score(analysis: AnalysisResults, name: str) -> str:
    score = analysis.scores.get(name)
    if score is None:
        return "missing: not computed"
    if score.value is None:
        return f"missing: {score.reason or 'no reason recorded'}"
    return text.number(score.value)


def build_evidence(analysis: AnalysisResults | Missing, name: str | None) -> EvidenceSection:
    """Section 2: the evidence on how well the pre-trained weights fit (pure)."""
    columns = ("target", "fixed features", "from scratch", "gap (scratch - fixed)", "Fisher")
    columns += ("EMD similarity", "regime")
    reference = tuple(PAPER_TABLE1)
    if isinstance(analysis, Missing):
        empty = Table(("score", "value"), ())
        return EvidenceSection(str(analysis), Table(columns, reference), empty, "", ())
    row = (
        f"{name or 'this target'} (this sweep)",
        text.value_or_missing(analysis.fixed_feature_accuracy),
        text.value_or_missing(analysis.scratch_accuracy),
        text.value_or_missing(analysis.gap, text.points),
        _score(analysis, "fisher"),
        _score(analysis, "emd"),
        analysis.regime.name + (" (provisional)" if analysis.regime.provisional else ""),
    )
    others = [key for key in analysis.scores if key not in ("fisher", "emd")]
    scores = Table(
        ("score", "value"),
        tuple((SCORE_NAMES.get(key, key), _score(analysis, key)) for key in others),
    )
    return EvidenceSection(
        None,
        Table(columns, (row, *reference)),
        scores,
        analysis.regime.rule,
        analysis.regime.disagreements,
    )


def build_search_note(sweep_yaml: str | Missing) -> str:
    """Section 4's first line: where the search's first trials came from and what it took
    from stage 1's evidence, as the replay benchmark measured it ('' without a readable sweep
    file or a known algorithm)."""
    document = sweep_document(sweep_yaml)
    sweep = document.get("sweep", {})
    search = sweep.get("search", {}) if isinstance(sweep, dict) else None
    if not document or not isinstance(search, dict):
        return ""
    name = search.get("algorithm", SearchConfig.model_fields["algorithm"].default)
    algorithm = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algorithm is None:
        return ""
    if algorithm.waits_for_evidence:
        note = (
            f"Search '{name}': the first trials were the winners of the past sweeps nearest "
            "to this target in its cheap evidence (fixed-feature accuracy, Fisher score)."
        )
    elif algorithm.learns_from_history:
        same_model = algorithm.first_trials == "zero_shot_model"
        note = (
            f"Search '{name}': the first trials came from past sweeps"
            f"{' of the same model (or its family)' if same_model else ''}, "
            "not from this target's evidence. On the replay benchmark's tables, past sweeps "
            "chosen by the evidence (search 'nbft') did better than past sweeps chosen at "
            "random with one worker (with eight, from the user's own 16-trial sweeps but not "
            "from whole tables), and worse than the best settings of the same model's past "
            "sweeps throughout."
        )
    else:
        note = f"Search '{name}': it learnt from no past sweep and not from the evidence."
    analysis = document.get("analysis")
    analysis = analysis if isinstance(analysis, dict) else {}
    veto, when = bool(analysis.get("veto")), analysis.get("when", "auto")
    if veto:
        note += " The regime's veto ruled out settings that go against it (analysis.veto)."
    in_sweep = analysis.get("in_sweep", True) is not False
    if in_sweep and when in ("auto", "after_search") and not analysis_with_search(name, when, veto):
        note += " Stage 1 (the analysis) ran after the search, so no trial waited for it."
    return note


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _mean_epoch_s(trials: Sequence[TrialResult]) -> float | None:
    times = [e.epoch_time_s for t in trials for e in t.history if e.epoch_time_s is not None]
    return sum(times) / len(times) if times else None


# How a sweep's trials ended, in the order the report counts them.
_COUNTED = (
    TrialStatus.COMPLETED,
    TrialStatus.PRUNED,
    TrialStatus.EARLY_STOPPED,
    TrialStatus.STOPPED,
    TrialStatus.DIVERGED,
    TrialStatus.ERROR,
)


def _status_counts(trials: Sequence[TrialResult]) -> str:
    counts = Counter(t.status for t in trials)
    parts = [f"{counts[s]} {s}" for s in _COUNTED]
    return f"{len(trials)} trials: " + ", ".join(p for p in parts if not p.startswith("0 "))


def build_pruning(
    pruning: Sequence[PruningDecision] | Missing, trials: Sequence[TrialResult] | Missing
) -> PruningSection:
    """Section 4: the search's decisions (warm starts, stops, vetoes), when, why, and the
    compute the stops saved (pure).

    Saved compute = the sum of the decisions' ``epochs_saved_estimate`` times the mean epoch
    time over every recorded epoch of every trial.
    """
    columns = ("time", "what", "rule", "evidence", "settings", "epochs saved", "compute saved")
    trial_list = () if isinstance(trials, Missing) else tuple(trials)
    counts = _status_counts(trial_list) + ". " if trial_list else ""
    if isinstance(pruning, Missing):
        return PruningSection(str(pruning), counts, Table(columns, ()), 0.0, None, None)
    mean_epoch = _mean_epoch_s(trial_list)
    rows = []
    for d in sorted(pruning, key=lambda d: d.time_s):
        saved = None if mean_epoch is None else d.epochs_saved_estimate * mean_epoch
        what = "region (no longer sampled)"
        if d.kind == DecisionKind.WARM_START:
            what = "first trials (warm start)"
        elif d.trial_id is not None:
            what = f"trial {d.trial_id}"
        rows.append(
            (
                f"{text.duration(d.time_s)} after start",
                what,
                str(d.kind),
                d.reason,
                text.settings_text(d.settings),
                f"{d.epochs_saved_estimate:.1f}",
                text.duration(saved),
            )
        )
    epochs = sum(d.epochs_saved_estimate for d in pruning)
    saved_s = None if mean_epoch is None else epochs * mean_epoch
    warm_starts = [d for d in pruning if d.kind == DecisionKind.WARM_START]
    warm = len(warm_starts)
    # A budget smaller than the warm start runs only its first settings.
    ran = sum(any(same_settings(d.settings, t.settings) for t in trial_list) for d in warm_starts)
    stopped = sum(d.trial_id is not None and d.kind != DecisionKind.WARM_START for d in pruning)
    vetoes = len(pruning) - warm
    summary = (
        f"{counts}{_plural(warm, 'setting')} of past sweeps queued first"
        f"{f' ({ran} ran)' if warm and trial_list else ''}; "
        f"{vetoes} {'stop or veto' if vetoes == 1 else 'stops or vetoes'} "
        f"({_plural(stopped, 'running trial')} stopped, "
        f"{_plural(vetoes - stopped, 'region')} no longer sampled): "
        f"about {epochs:.1f} epochs saved"
    )
    if saved_s is not None:
        summary += (
            f", {text.duration(saved_s)} of compute at the mean epoch time of {mean_epoch:.1f} s."
        )
    else:
        summary += "; no epoch times recorded, so no compute estimate."
    return PruningSection(None, summary, Table(columns, tuple(rows)), epochs, mean_epoch, saved_s)


def build_trials_table(trials: Sequence[TrialResult]) -> Table:
    """Every search trial, best validation accuracy first (pure)."""
    ranked = sorted(
        trials, key=lambda t: (t.best_val_accuracy is None, -(t.best_val_accuracy or 0.0))
    )
    columns = ("trial", "status", "best val accuracy", "epochs", "time", "settings", "note")
    return Table(
        columns,
        tuple(
            (
                t.trial_id,
                t.status,
                text.percent(t.best_val_accuracy),
                str(len(t.history)),
                text.duration(t.time_s),
                text.settings_text(t.settings),
                t.prune_reason or "",
            )
            for t in ranked
        ),
    )


def build_reproducibility(
    environment: EnvironmentInfo | Missing, sweep_yaml: str | Missing
) -> ReproSection:
    """Section 5: what the sweep ran with (pure)."""
    sweep_text = None if isinstance(sweep_yaml, Missing) else sweep_yaml
    sweep_missing = str(sweep_yaml) if isinstance(sweep_yaml, Missing) else None
    if isinstance(environment, Missing):
        empty = Table(("recorded", "value"), ())
        return ReproSection(str(environment), empty, empty, sweep_text, sweep_missing)
    mlflow = environment.mlflow
    facts = [
        ("code version", environment.code_version),
        ("seeds", ", ".join(str(s) for s in environment.seeds) or "none recorded"),
        ("host", environment.hostname or "unknown"),
        ("started", environment.started_at or "unknown"),
        ("ended", environment.ended_at or "not recorded (interrupted?)"),
    ]
    if mlflow:
        facts.append(("MLflow", ", ".join(f"{k}={v}" for k, v in mlflow.items() if v)))
    packages = tuple(
        (name, version or "not installed") for name, version in environment.packages.items()
    )
    return ReproSection(
        None,
        Table(("recorded", "value"), tuple(facts)),
        Table(("package", "version"), packages),
        sweep_text,
        sweep_missing,
    )


def build_figures(results: SweepResults) -> tuple[FigureRecord, ...]:
    """The records of every plot, in the report's order (pure; fANOVA is seeded)."""
    trials = () if isinstance(results.trials, Missing) else results.trials
    records = [
        figures.lr_by_reinit(trials),
        figures.low_layer_split(trials),
        figures.l2sp_alpha(trials),
        figures.l2sp_layers(trials),
        figures.default_vs_optimal(results.final),
        figures.progress(trials, results.pruning),
        importance_chart(trials),
    ]
    if isinstance(results.trials, Missing):
        why = figures.NoData(f"no trials ({results.trials.reason})")
        return tuple(
            FigureRecord(r.key, r.title, "", why) if isinstance(r.data, figures.NoData) else r
            for r in records
        )
    return tuple(records)


def build_report(results: SweepResults) -> Report:
    """The whole report as records, ready to render."""
    name = results.name
    trials = results.trials
    return Report(
        title=f"Sweep report: {name}" if name else "Sweep report",
        source=results.source,
        verdict=build_verdict(results),
        evidence=build_evidence(results.analysis, name),
        figures=build_figures(results),
        search=build_search_note(results.sweep_yaml),
        pruning=build_pruning(results.pruning, trials),
        trials=None if isinstance(trials, Missing) else build_trials_table(trials),
        trials_missing=str(trials) if isinstance(trials, Missing) else None,
        reproducibility=build_reproducibility(results.environment, results.sweep_yaml),
    )
