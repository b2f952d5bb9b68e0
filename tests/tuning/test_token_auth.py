"""A tracking server behind a bearer-token gateway (as an OAuth2 proxy or a hosted MLflow puts
it): the sweep's preflight and ``nbft history`` pass with MLFLOW_TRACKING_TOKEN, and are
refused, in seconds and naming the field, without it."""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.tuning.plan import StorageLocation
from nonbinary_ft.tuning.preflight import preflight
from tests.servers import free_port, serving

pytestmark = pytest.mark.slow

TOKEN = "t0ken-for-tests"


def _gateway(upstream: str) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        """Forwards a request to ``upstream`` only with ``Authorization: Bearer TOKEN``."""

        def _forward(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", "Bearer")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            request = urllib.request.Request(
                upstream + self.path, data=body, method=self.command,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815 (http.server's names)

        def log_message(self, *args):
            pass

    return Gateway


@pytest.fixture(scope="module")
def gateway_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("token-mlflow")
    port = free_port()
    upstream = f"http://127.0.0.1:{port}"
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    command = [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", store]  # fmt: skip
    with serving(command, f"{upstream}/health", workdir):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _gateway(upstream))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()


def test_the_preflight_sends_the_token_the_mlflow_client_would(
    gateway_uri, make_config, tmp_path, monkeypatch
):
    config = make_config(tmp_path)
    storage = StorageLocation(str(tmp_path / "runs"), tmp_path / "runs")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="credentials were refused") as refused:
        preflight(config, gateway_uri, storage)
    assert refused.value.field == "sweep.mlflow.tracking_uri"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong")
    with pytest.raises(ConfigError, match="HTTP 401"):
        preflight(config, gateway_uri, storage)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    assert preflight(config, gateway_uri, storage) == []


def test_nbft_history_reads_through_the_token_and_names_the_uri_without_it(
    gateway_uri, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    command = ["history", "--tracking-uri", gateway_uri, "--no-prior", "--json"]
    read = CliRunner().invoke(app, command)
    assert read.exit_code == 0, read.output
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    refused = CliRunner().invoke(app, ["history", "--tracking-uri", gateway_uri, "--no-prior"])
    assert refused.exit_code == 2
    assert gateway_uri in refused.stderr and "credentials were refused" in refused.stderr
