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

The names load on first use: the regime and recommendation rules (pure Python) are read by
the search and the replay, which must not pay for torch and timm that the features need.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name -> the submodule that defines it.
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
    "Evidence": "regime",
    "Regime": "regime",
    "RegimeLabel": "regime",
    "decide_regime": "regime",
    "Recommendation": "recommend",
    "recommend": "recommend",
    "recommended_settings": "recommend",
    "narrowed_space": "recommend",
    "space_violations": "recommend",
    "row_answers": "recommend",
    "rows_against": "recommend",
    "AnalysisReport": "runner",
    "analyse": "runner",
    "count_layers": "runner",
    "recommended_config": "outputs",
    "write_outputs": "outputs",
}

__all__ = list(_SUBMODULE)


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
