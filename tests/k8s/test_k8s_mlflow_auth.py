"""A real `mlflow server --app-name basic-auth`, configured like the in-cluster one."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.slow


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_health_is_open_and_the_api_needs_credentials(mlflow_server):
    search = f"{mlflow_server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(f"{mlflow_server.uri}/health") == 200  # the kubelet's probes need no login
    assert _get(search) == 401
    assert _get(search, (mlflow_server.admin_username, "wrong-password-123")) == 401
    assert _get(search, (mlflow_server.admin_username, mlflow_server.admin_password)) == 200


def test_admin_creates_a_run_and_anonymous_client_is_refused(mlflow_server, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    anonymous = MlflowClient(tracking_uri=mlflow_server.uri)
    with pytest.raises(MlflowException) as refused:
        anonymous.create_experiment("anonymous")
    assert "401" in str(refused.value) or "Unauthorized" in str(refused.value)

    for name, value in mlflow_server.client_env().items():
        monkeypatch.setenv(name, value)
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.create_experiment("k8s-auth-check")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "val_accuracy", 0.5)
    client.log_text(run.info.run_id, json.dumps({"ok": True}), "check.json")  # served artifacts
    client.set_terminated(run.info.run_id)
    stored = client.get_run(run.info.run_id)
    assert stored.data.metrics["val_accuracy"] == 0.5
    assert stored.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["check.json"]
    assert (mlflow_server.workdir / "artifacts").is_dir()
