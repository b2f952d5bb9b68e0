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
"""

from nonbinary_ft.analysis.features import (
    FeatureSet,
    SplitFeatures,
    extract_features,
    source_sample_features,
)
from nonbinary_ft.analysis.outputs import recommended_config, write_outputs
from nonbinary_ft.analysis.probe import (
    ProbeCandidate,
    ProbeResult,
    fit_linear_probe,
    fixed_feature_accuracy,
)
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
from nonbinary_ft.analysis.runner import AnalysisReport, analyse, count_layers, transfer_scores
from nonbinary_ft.analysis.scratch import (
    ScratchResult,
    given_scratch,
    scratch_baseline,
    scratch_config,
)

__all__ = [
    # features
    "FeatureSet",
    "SplitFeatures",
    "extract_features",
    "source_sample_features",
    # fixed features
    "ProbeCandidate",
    "ProbeResult",
    "fit_linear_probe",
    "fixed_feature_accuracy",
    # from scratch
    "ScratchResult",
    "scratch_baseline",
    "scratch_config",
    "given_scratch",
    # scores
    "transfer_scores",
    # regime and recommendation
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
    # the whole analysis
    "AnalysisReport",
    "analyse",
    "count_layers",
    "recommended_config",
    "write_outputs",
]
