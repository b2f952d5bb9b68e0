"""Sweep files: validated, frozen configuration, loaded through one ``load_config(path)``.

- :mod:`~nonbinary_ft.config.base`: the frozen model and the one error conversion;
- :mod:`~nonbinary_ft.config.settings`: one trial's settings and their bounds for a model;
- :mod:`~nonbinary_ft.config.space`: search spaces over those settings (``search_spaces/``);
- :mod:`~nonbinary_ft.config.sections`: model, data and training;
- :mod:`~nonbinary_ft.config.analysis`: the analysis (probe, scratch baseline, regime rule);
- :mod:`~nonbinary_ft.config.sweep`: the sweep (space, search, scheduler, budget, outputs);
- :mod:`~nonbinary_ft.config.experiment`: the whole file and how it is read.
"""

from nonbinary_ft.config.analysis import AnalysisConfig, ProbeConfig, ScratchConfig
from nonbinary_ft.config.base import config_error_from_validation, read_yaml, validate_model
from nonbinary_ft.config.experiment import (
    ExperimentConfig,
    apply_overrides,
    load_config,
    with_settings,
)
from nonbinary_ft.config.sections import DataConfig, ModelConfig, SyntheticConfig, TrainConfig
from nonbinary_ft.config.settings import SETTING_NAMES, TrialSettings
from nonbinary_ft.config.sweep import (
    BudgetConfig,
    FinalConfig,
    MlflowConfig,
    ResourcesConfig,
    SchedulerConfig,
    SearchConfig,
    StorageConfig,
    SweepConfig,
)

__all__ = [
    "SETTING_NAMES",
    "AnalysisConfig",
    "BudgetConfig",
    "DataConfig",
    "ExperimentConfig",
    "FinalConfig",
    "MlflowConfig",
    "ModelConfig",
    "ProbeConfig",
    "ResourcesConfig",
    "ScratchConfig",
    "SchedulerConfig",
    "SearchConfig",
    "StorageConfig",
    "SweepConfig",
    "SyntheticConfig",
    "TrainConfig",
    "TrialSettings",
    "apply_overrides",
    "config_error_from_validation",
    "load_config",
    "read_yaml",
    "validate_model",
    "with_settings",
]
