"""What a sweep ran with (``environment.json``): package versions, code version, host, times."""

from __future__ import annotations

import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from nonbinary_ft.results.schema import EnvironmentInfo

__all__ = ["collect_environment"]

_PACKAGES = ("torch", "timm", "ray", "optuna", "mlflow")


def _code_version() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    version = metadata.version("nonbinary-ft")
    # An installed wheel has no git checkout: the package version is all there is.
    return f"{version} ({described})" if described else version


def collect_environment(
    seeds: Sequence[int] = (),
    started_at: str | None = None,
    ended_at: str | None = None,
    mlflow: Mapping[str, str | None] | None = None,
) -> EnvironmentInfo:
    """The running process's environment, for the sweep to write as ``environment.json``.

    Args:
        seeds: the seeds the sweep used (training seed and the final runs' seeds).
        started_at, ended_at: wall-clock times, ISO 8601.
        mlflow: ``tracking_uri``, ``experiment`` and ``parent_run_id`` of the sweep's runs.
    """
    packages: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return EnvironmentInfo(
        packages=packages,
        code_version=_code_version(),
        seeds=tuple(seeds),
        hostname=socket.gethostname(),
        started_at=started_at,
        ended_at=ended_at,
        mlflow=dict(mlflow or {}),
    )
