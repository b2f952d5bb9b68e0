"""Fixtures of the Kubernetes tests: rendered overlays, checkov, a real MLflow server.

``mlflow_server`` starts a real ``mlflow server`` with the basic-auth app, a SQLite tracking
store and a SQLite auth store in a temporary folder, on 127.0.0.1 at a free port, and stops
it afterwards. It is the stand-in of the in-cluster server for tests that submit the
RayJob's entrypoint to a local Ray cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from k8s_helpers import K8S, REPO, kustomize, overlay_stacks

from tests.servers import free_port, serving

CHECKOV_VERSION = "3.3.30"
# checkov pins old versions of packages that torch, ray and mlflow need newer (packaging,
# networkx, ...), so it lives in a venv of its own inside .venv (removed by `make clean`).
CHECKOV_VENV = REPO / ".venv" / "tools" / "checkov"


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay stack ('dev/sweep', ...) built with kubectl kustomize, parsed."""
    stacks = overlay_stacks()
    assert stacks, f"no kustomization under {K8S / 'overlays'}"
    return {stack: kustomize(K8S / "overlays" / stack) for stack in stacks}


@pytest.fixture(scope="session")
def checkov() -> str:
    """The checkov executable: $NBFT_CHECKOV, checkov on PATH, or one installed on demand.

    The first install (pip, from PyPI, into .venv/tools/checkov) takes about two minutes;
    later runs reuse it. Skips when it cannot be installed (no package index reachable).
    """
    for candidate in (os.environ.get("NBFT_CHECKOV"), shutil.which("checkov")):
        if candidate:
            return candidate
    executable = CHECKOV_VENV / "bin" / "checkov"
    if not executable.exists():
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True, timeout=120
            )
            subprocess.run(
                [
                    str(CHECKOV_VENV / "bin" / "pip"),
                    "install",
                    "--quiet",
                    f"checkov=={CHECKOV_VERSION}",
                ],
                check=True,
                timeout=900,
                capture_output=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
            pytest.skip(f"could not install checkov=={CHECKOV_VERSION}: {error}")
    return str(executable)


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server --app-name basic-auth``.

    Attributes:
        uri: its tracking URI, http://127.0.0.1:PORT.
        admin_username: the admin created on first start.
        admin_password: the admin's password.
        workdir: the folder holding its databases, artifacts and log.
    """

    uri: str
    admin_username: str
    admin_password: str
    workdir: Path

    def client_env(self) -> dict[str, str]:
        """The environment a client needs to log in as the admin."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": self.admin_username,
            "MLFLOW_TRACKING_PASSWORD": self.admin_password,
        }


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server with basic auth on 127.0.0.1, for the session."""
    workdir = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    auth_ini = workdir / "basic_auth.ini"
    # The same settings as k8s/base/platform/basic_auth.ini, on SQLite instead of PostgreSQL.
    auth_ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'auth.db'}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"
    )
    server = MlflowServer(uri, "admin", secrets.token_urlsafe(18), workdir)
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_AUTH_ADMIN_USERNAME": server.admin_username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": server.admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow),
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(workdir / "artifacts"),
    ]
    with serving(command, f"{uri}/health", workdir, env):
        yield server
