"""The report's first section: what to run, what it will score, and what it gains.

The recommended settings are, in order of preference: the final entry labelled ``"best"``
(re-run with several seeds on the test split), else the completed trial with the best
validation accuracy, else the analysis's recommendation. The gain is measured against the
binary baseline (head-only re-init, one LR, plain L2: the search's best such setting, or one
tuned by its own learning-rate search) run in the same sweep, never against a number from
elsewhere; the report names which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from nonbinary_ft.config.settings import is_binary
from nonbinary_ft.reporting import text
from nonbinary_ft.results import (
    BEST_LABEL,
    BINARY_DEFAULT_LABEL,
    FinalEntry,
    Missing,
    SweepResults,
    TrialResult,
)

__all__ = [
    "Verdict",
    "table1_markdown",
    "default_entry",
    "best_entry",
    "recommended_config_yaml",
    "sweep_document",
    "build_verdict",
]

REGIME_TEXT = {
    "fits_well": "the pre-trained weights fit the target well",
    "fits_poorly": "the pre-trained weights fit the target poorly",
    "unclear": "it is unclear how well the pre-trained weights fit the target",
}


@dataclass(frozen=True)
class Verdict:
    """What the report recommends, with every number it rests on and its display text.

    Attributes:
        regime: ``fits_well``, ``fits_poorly``, ``unclear``, or None without an analysis.
        settings: the recommended trial settings; ``settings_source`` says where they come from.
        settings_yaml: the ``settings:`` block to paste into a sweep file.
        config_yaml: a whole ready-to-run sweep file (``recommended.yaml``).
        mean, std, ensemble: test accuracy of the recommended settings over the seeds.
        default_mean, gain: the binary baseline's mean test accuracy, and ``mean - default``.
        table7: how the settings compare with what the paper's table 7 predicts.
        notes: what is missing and what was used instead.
    """

    regime: str | None
    provisional: bool
    regime_text: str
    settings: dict[str, Any]
    settings_source: str
    settings_yaml: str
    config_yaml: str
    mean: float | None
    std: float | None
    ensemble: float | None
    expected_text: str
    ensemble_text: str
    default_mean: float | None
    gain: float | None
    gain_text: str
    table7: tuple[str, ...]
    notes: tuple[str, ...]

    def markdown(self) -> str:
        """The verdict as a short Markdown description (the sweep's MLflow parent run)."""
        lines = [
            f"**Regime: {self.regime or 'unknown'}** ({self.regime_text})",
            "",
            f"- Recommended settings ({self.settings_source}):",
            "",
            "```yaml",
            self.settings_yaml.rstrip(),
            "```",
            "",
            f"- Expected test accuracy: {self.expected_text}",
            f"- Gain: {self.gain_text}",
        ]
        return "\n".join(lines) + "\n"


def table1_markdown(table1: Mapping[str, Any]) -> str:
    """The paper's table 1 row as a Markdown table (MLflow renders run descriptions)."""
    names = {
        "fixed_feature_accuracy": "fixed-feature accuracy (val)",
        "from_scratch_accuracy": "from-scratch accuracy (val)",
        "gap": "gap (scratch - fixed)",
        "fisher": "Fisher score",
        "emd_similarity": "EMD similarity",
    }
    rows = [
        f"| {label} | {'-' if table1.get(key) is None else f'{table1[key]:.4g}'} |"
        for key, label in names.items()
    ]
    return "\n".join(["| table 1 | value |", "|---|---|", *rows]) + "\n"


def default_entry(final: Sequence[FinalEntry]) -> FinalEntry | None:
    """The binary baseline's final entry: by label, else the one with binary settings."""
    for entry in final:
        if entry.label == BINARY_DEFAULT_LABEL:
            return entry
    return next((entry for entry in final if is_binary(entry.settings)), None)


def best_entry(final: Sequence[FinalEntry]) -> FinalEntry | None:
    """The entry labelled ``"best"``, else the measured non-default one with the best mean."""
    for entry in final:
        if entry.label == BEST_LABEL:
            return entry
    default = default_entry(final)
    others = [e for e in final if e is not default and e.mean is not None]
    return max(others, key=lambda e: e.mean or 0.0, default=None)


def _best_trial(trials: Sequence[TrialResult] | Missing) -> TrialResult | None:
    if isinstance(trials, Missing):
        return None
    done = [t for t in trials if t.status == "completed" and t.best_val_accuracy is not None]
    return max(done, key=lambda t: (t.best_val_accuracy or 0.0, t.trial_id), default=None)


def _clean(settings: Mapping[str, Any]) -> dict[str, Any]:
    # Unset values (lr_new, lr_low) are left out: the config's defaults apply.
    return {name: value for name, value in settings.items() if value is not None}


def sweep_document(sweep_yaml: str | Missing) -> dict[str, Any]:
    """The run folder's sweep file as a mapping; {} when it is missing, is not YAML or is not
    a mapping (a file edited by hand may hold anything: the report still renders)."""
    if isinstance(sweep_yaml, Missing):
        return {}
    try:
        document = yaml.safe_load(sweep_yaml)
    except yaml.YAMLError:
        return {}
    return document if isinstance(document, dict) else {}


def recommended_config_yaml(
    sweep_yaml: str | Missing, settings: Mapping[str, Any], header: Sequence[str]
) -> str:
    """The sweep file with its ``settings`` replaced: ``nbft finetune`` runs it as it is.

    Args:
        sweep_yaml: the sweep's resolved sweep file (or Missing: then only ``settings:``).
        settings: the recommended settings.
        header: comment lines put on top.
    """
    # Merged into the sweep file, the settings keep the key's position.
    document = {**sweep_document(sweep_yaml), "settings": _clean(settings)}
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.safe_dump(document, sort_keys=False)


def _choose(results: SweepResults) -> tuple[dict[str, Any], str, FinalEntry | None, list[str]]:
    notes: list[str] = []
    final = results.final
    if isinstance(final, Missing):
        notes.append(f"final runs missing: {final.reason}")
        final = ()
    best = best_entry(final)
    if best is not None:
        seeds = len(best.seeds)
        return dict(best.settings), f"final re-run '{best.label}' ({seeds} seeds)", best, notes
    trial = _best_trial(results.trials)
    if trial is not None:
        notes.append("no final entry for the best settings: the search's best trial is shown")
        source = f"best completed search trial {trial.trial_id} (validation only)"
        return dict(trial.settings), source, None, notes
    analysis = results.analysis
    if not isinstance(analysis, Missing) and analysis.recommended_settings:
        notes.append("no completed trial: the analysis's recommendation is shown, untested")
        return dict(analysis.recommended_settings), "analysis recommendation", None, notes
    notes.append("no final run, no completed trial and no analysis: nothing to recommend")
    return {}, "nothing", None, notes


def _expected(entry: FinalEntry | None, trial_best: float | None) -> tuple[str, str]:
    if entry is None or entry.mean is None:
        if trial_best is not None:
            return f"{text.percent(trial_best)} (validation accuracy, no test runs)", "n/a"
        return "n/a: no measured accuracy", "n/a"
    ok = sum(value is not None for value in entry.test_accuracies)
    expected = (
        f"{text.percent(entry.mean)} ± {100 * (entry.std or 0.0):.2f} "
        f"(test accuracy, mean ± std over {ok} of {len(entry.seeds)} seeds)"
    )
    if entry.ensemble_accuracy is not None:
        ensemble = f"{text.percent(entry.ensemble_accuracy)} (ensemble of the {ok} seeds)"
    else:
        ensemble = f"n/a: {entry.ensemble_reason or 'no ensemble accuracy recorded'}"
    return expected, ensemble


def _failed_seeds(entry: FinalEntry) -> list[str]:
    failed = []
    for seed, value, error in zip(entry.seeds, entry.test_accuracies, entry.errors, strict=False):
        if value is None:
            failed.append(f"'{entry.label}' seed {seed} failed: {error or 'no reason recorded'}")
    return failed


def _gain(best: FinalEntry | None, final: Sequence[FinalEntry]) -> tuple[float | None, str, Any]:
    default = default_entry(final)
    if default is None:
        return None, "no gain computed: the binary baseline was not measured in this sweep", None
    if default.mean is None:
        return None, "no gain computed: every run of the binary baseline failed", default
    if best is None or best.mean is None:
        return None, "no gain computed: the best settings have no test accuracy", default
    gain = best.mean - default.mean
    basis = f"; the baseline is {default.basis}" if default.basis else ""
    return (
        gain,
        f"{text.points(gain)} over the binary baseline ({text.percent(default.mean)} ± "
        f"{100 * (default.std or 0.0):.2f}, same sweep, same seeds{basis})",
        default,
    )


def _table7(regime: str | None, settings: Mapping[str, Any], default: FinalEntry | None) -> list:
    """Compare the settings with the paper's table 7 for the regime, one line per row."""
    if regime not in ("fits_well", "fits_poorly") or not settings:
        return []
    well = regime == "fits_well"
    k = settings.get("reinit_layers") or 1
    m = settings.get("l2sp_layers") or 0
    n = settings.get("low_layers") or 0
    rows = [
        ("re-initialised layers", "more than one" if well else "one", k, (k > 1) == well),
        ("L2-SP", "on some or all layers" if well else "none (plain L2)", m, (m != 0) == well),
        ("lower layers at a lower LR", "no" if well else "yes", n, (n == 0) == well),
    ]
    base = default.settings.get("lr_high") if default is not None else None
    lr = settings.get("lr_high")
    if base is not None and lr is not None and lr != base:
        rows.insert(0, ("learning rate", "low" if well else "high", lr, (lr < base) == well))
    return [
        f"{name}: table 7 says {expected}; found {text.setting_value(found)} "
        f"({'agrees' if agrees else 'disagrees'})"
        for name, expected, found, agrees in rows
    ]


def build_verdict(results: SweepResults) -> Verdict:
    """The verdict of the report (pure: reads ``results`` only)."""
    analysis = results.analysis
    regime = None if isinstance(analysis, Missing) else analysis.regime
    settings, source, best, notes = _choose(results)
    final = () if isinstance(results.final, Missing) else results.final
    if best is not None:
        notes.extend(_failed_seeds(best))
    gain, gain_text, default = _gain(best, final)
    if default is not None:
        notes.extend(_failed_seeds(default))
    trial = _best_trial(results.trials)
    expected, ensemble = _expected(best, trial.best_val_accuracy if trial else None)
    if regime is None:
        regime_text = f"regime unknown: analysis {analysis}"
    else:
        regime_text = REGIME_TEXT[regime.name]
        if regime.provisional:
            regime_text += "; provisional: decided before the from-scratch baseline was known"
    name = results.name or "this sweep"
    header = [
        f"Recommended by `nbft report` for {name}: {source}.",
        f"Expected: {expected}.",
        "Run it with: nbft finetune recommended.yaml",
    ]
    return Verdict(
        regime=regime.name if regime else None,
        provisional=regime.provisional if regime else True,
        regime_text=regime_text,
        settings=settings,
        settings_source=source,
        settings_yaml=yaml.safe_dump({"settings": _clean(settings)}, sort_keys=False),
        config_yaml=recommended_config_yaml(results.sweep_yaml, settings, header),
        mean=best.mean if best else None,
        std=best.std if best else None,
        ensemble=best.ensemble_accuracy if best else None,
        expected_text=expected,
        ensemble_text=ensemble,
        default_mean=default.mean if default else None,
        gain=gain,
        gain_text=gain_text,
        table7=tuple(_table7(regime.name if regime else None, settings, default)),
        notes=tuple(notes),
    )
