"""The controlled transfer suite: a source and targets whose relation is known by construction.

:mod:`.build` pre-trains the colour-blind source and makes the targets' sweep files;
:mod:`.compare` runs each regime's recommended settings on a target.
"""

from benchmarks.suite.build import (
    EXPECTED_REGIMES,
    SUITE_FORMAT,
    SUITE_SPECS,
    SourceModel,
    SuiteSpec,
    TransferSuite,
    build_suite,
    make_colour_blind,
    pretrain_source,
    source_config,
    source_key,
    target_config,
)
from benchmarks.suite.compare import RegimeComparison, RegimeRuns, compare_regimes

__all__ = [
    "EXPECTED_REGIMES",
    "SUITE_FORMAT",
    "SUITE_SPECS",
    "RegimeComparison",
    "RegimeRuns",
    "SourceModel",
    "SuiteSpec",
    "TransferSuite",
    "build_suite",
    "compare_regimes",
    "make_colour_blind",
    "pretrain_source",
    "source_config",
    "source_key",
    "target_config",
]
