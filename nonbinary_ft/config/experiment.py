"""A whole sweep file: :class:`ExperimentConfig`, read through one :func:`load_config`.

A sweep file names a backbone (``model``), a target data set (``data``), a training recipe
(``train``), one trial's non-binary settings (``settings``), how the analysis measures the fit
of the pre-trained weights (``analysis``) and the sweep itself (``sweep``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from nonbinary_ft.config.analysis import AnalysisConfig
from nonbinary_ft.config.base import FrozenModel, invalid, read_yaml, validate_model
from nonbinary_ft.config.sections import DataConfig, ModelConfig, TrainConfig
from nonbinary_ft.config.settings import TrialSettings
from nonbinary_ft.config.sweep import SweepConfig
from nonbinary_ft.errors import ConfigError

__all__ = ["ExperimentConfig", "load_config", "apply_overrides", "with_settings"]


class ExperimentConfig(FrozenModel):
    """A sweep file: what to fine-tune, on what, how, and the default trial settings."""

    name: str = Field(
        description="Name of the experiment: its run folder (<storage>/<name>) and MLflow "
        "experiment. Letters, digits, '.', '_' and '-', at most 100, starting with a letter "
        "or digit (a name never reaches outside the storage folder)."
    )
    model: ModelConfig = Field(description="Backbone and pre-trained weights.")
    data: DataConfig = Field(description="Target data set.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training recipe.")
    settings: TrialSettings = Field(
        default_factory=TrialSettings, description="Non-binary settings of a single trial."
    )
    analysis: AnalysisConfig = Field(
        default_factory=AnalysisConfig,
        description="How the fit of the pre-trained weights is measured (nbft recommend, and "
        "the sweep's analysis stage).",
    )
    sweep: SweepConfig = Field(
        default_factory=SweepConfig,
        description="nbft sweep: search space, algorithm, scheduler, budget, resources, "
        "storage, MLflow and the final seeded re-runs.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
            raise invalid(
                "",
                "a folder name: 1 to 100 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit (no '/', no '..')",
                name,
            )
        return name

    def architecture_only(self) -> ExperimentConfig:
        """This experiment with a random-weight backbone (:meth:`ModelConfig.architecture_only`)."""
        return self.model_copy(update={"model": self.model.architecture_only()})


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a sweep file.

    Raises:
        ConfigError: the file is missing, is not YAML, or a field is invalid (the message
            names the file, the field path, what was expected and what was given).
    """
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a YAML {type(raw).__name__}"
        raise ConfigError(
            "<top level>", "a mapping of sections (model, data, ...)", None, f"It is {got}.", path
        )
    return validate_model(ExperimentConfig, raw, path)


def apply_overrides(
    config: ExperimentConfig, overrides: list[str], option: str = "--set"
) -> ExperimentConfig:
    """Return a copy of ``config`` with ``KEY=VALUE`` overrides applied and re-validated.

    A key without a dot is a trial setting (``reinit_layers=2``); a dotted key names any
    field (``train.epochs=3``). Values are parsed as YAML scalars. ``option`` is the command
    line option the overrides came from, named in an error.

    Raises:
        ConfigError: a malformed override or an invalid resulting value.
    """
    raw = config.model_dump(mode="json")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError("--set", "KEY=VALUE, e.g. reinit_layers=2", override)
        path = key.split(".") if "." in key else ["settings", key]
        node = raw
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {key}", "a path to a known setting", override)
            node = node[part]
        node[path[-1]] = yaml.safe_load(value)
    return validate_model(ExperimentConfig, raw, option)


def with_settings(config: ExperimentConfig, settings: dict[str, Any]) -> ExperimentConfig:
    """Return a copy of ``config`` whose trial settings are updated from a dict (one trial).

    Raises:
        ConfigError: an unknown setting or an invalid value.
    """
    raw = config.model_dump(mode="json")
    raw["settings"] = {**raw["settings"], **settings}
    return validate_model(ExperimentConfig, raw, "trial settings")
