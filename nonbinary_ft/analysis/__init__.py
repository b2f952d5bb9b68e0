"""Analysis: how well the pre-trained weights fit the target, and what to sweep.

The paper's section 4.1 and 4.6 as a library: cached pre-trained features
(:func:`extract_features`), the fixed-feature accuracy of a linear probe
(:func:`fixed_feature_accuracy`), the from-scratch baseline (:func:`scratch_baseline`),
transferability scores (:mod:`nonbinary_ft.analysis.scores`), the regime they imply
(:func:`decide_regime`) and the table-7 recommendation (:func:`recommend`). :func:`analyse`
runs them all::

    report = analyse(config, workdir="runs/x/analysis", scratch=False)
    report.regime.label                # "fits_well" / "fits_poorly" / "unclear"
    report.recommendation.settings     # a TrialSettings, ready to run

The regime and recommendation rules (pure Python, read by the search and the replay) load
with the package; the other names load on first use, so that those readers do not pay for
the torch and timm imports the features need.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported eagerly, which also binds ``recommend`` to the function rather than its module.
from nonbinary_ft.analysis.recommend import (
    Recommendation,
    narrowed_space,
    recommend,
    recommended_settings,
    row_answers,
    rows_against,
    space_violations,
)
from nonbinary_ft.analysis.regime import Evidence, Regime, RegimeLabel, decide_regime

# The other public names -> the submodule that defines each (loaded on first use).
_SUBMODULE = {
    "FeatureSet": "features",
    "SplitFeatures": "features",
    "extract_features": "features",
    "source_sample_features": "features",
    "ProbeCandidate": "probe",
    "ProbeResult": "probe",
    "fit_linear_probe": "probe",
    "fixed_feature_accuracy": "probe",
    "ScratchResult": "scratch",
    "scratch_baseline": "scratch",
    "scratch_config": "scratch",
    "given_scratch": "scratch",
    "transfer_scores": "runner",
    "AnalysisReport": "runner",
    "analyse": "runner",
    "count_layers": "runner",
    "recommended_config": "outputs",
    "write_outputs": "outputs",
}

__all__ = [
    "FeatureSet",
    "SplitFeatures",
    "extract_features",
    "source_sample_features",
    "ProbeCandidate",
    "ProbeResult",
    "fit_linear_probe",
    "fixed_feature_accuracy",
    "ScratchResult",
    "scratch_baseline",
    "scratch_config",
    "given_scratch",
    "transfer_scores",
    "Evidence",
    "Regime",
    "RegimeLabel",
    "decide_regime",
    "Recommendation",
    "recommend",
    "recommended_settings",
    "narrowed_space",
    "space_violations",
    "row_answers",
    "rows_against",
    "AnalysisReport",
    "analyse",
    "count_layers",
    "recommended_config",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
