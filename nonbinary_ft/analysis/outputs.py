"""The analysis's files: ``analysis.json``, ``recommended.yaml`` and ``space.yaml``.

``recommended.yaml`` is a complete sweep file (the input with the recommended settings),
loadable by :func:`nonbinary_ft.config.load_config`; ``space.yaml`` is the narrowed space in
the format of ``search_spaces/``, its reasons as comments.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from nonbinary_ft.analysis.recommend import Recommendation
from nonbinary_ft.analysis.runner import AnalysisReport
from nonbinary_ft.config import ExperimentConfig, with_settings
from nonbinary_ft.config.space import dump_space
from nonbinary_ft.results.io import write_json

__all__ = ["recommended_config", "settings_yaml", "config_yaml", "space_yaml", "write_outputs"]


def recommended_config(
    config: ExperimentConfig, recommendation: Recommendation
) -> ExperimentConfig:
    """``config`` with its trial settings replaced by the recommended ones.

    Raises:
        ConfigError: never for a recommendation made for this config's model.
    """
    return with_settings(config, recommendation.settings.model_dump(mode="json"))


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def settings_yaml(recommendation: Recommendation) -> str:
    """The recommended ``settings:`` block, each value followed by its reason as a comment.

    Unset values (``lr_new``, ``lr_low`` when unused) are left out: their defaults apply.
    """
    lines = ["settings:"]
    dumped = recommendation.settings.model_dump(mode="json", exclude_none=True)
    for name, value in dumped.items():
        rendered = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...")
        reason = recommendation.reasons.get(name)
        suffix = f"  # {reason}" if reason else ""
        lines.append(f"  {name}: {rendered.strip()}{suffix}")
    return "\n".join(lines) + "\n"


def config_yaml(config: ExperimentConfig, header: list[str]) -> str:
    """A whole sweep file as YAML, with ``header`` as comment lines on top."""
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    return _comment(header) + body


def space_yaml(recommendation: Recommendation) -> str:
    """The narrowed space as a ``search_spaces/`` file, each parameter's reason in a comment."""
    header = [f"Narrowed search space for regime '{recommendation.regime}'.", "Reasons:"]
    header += [f"  {name}: {reason}" for name, reason in recommendation.space_reasons.items()]
    return _comment(header) + dump_space(recommendation.space)


def write_outputs(
    report: AnalysisReport, config: ExperimentConfig, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``analysis.json``, ``recommended.yaml`` and ``space.yaml`` into ``out_dir``.

    Returns:
        ``{"analysis": path, "recommended": path, "space": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    regime = report.regime
    paths = {
        "analysis": out / "analysis.json",
        "recommended": out / "recommended.yaml",
        "space": out / "space.yaml",
    }
    write_json(paths["analysis"], report.to_dict())
    header = [
        f"Written by `nbft recommend`: {config.name} with the settings recommended for regime "
        f"'{regime.label}'{' (provisional)' if regime.provisional else ''}.",
        f"Rule: {regime.rule}",
    ]
    recommended = recommended_config(config, report.recommendation)
    paths["recommended"].write_text(config_yaml(recommended, header))
    paths["space"].write_text(space_yaml(report.recommendation))
    return paths
