"""The RayJob's entrypoint, submitted with `ray job submit` to a local two-node Ray cluster.

This is what KubeRay does in the cluster: `ray start --head` with no CPUs for tasks (the head
group's rayStartParams), a worker node, the submitter's `ray job submit -- <entrypoint>`,
and the credentials of the MLflow server in the environment of the Ray nodes (from the
nbft-mlflow-client Secret in the cluster). The sweep file stands in for the ConfigMap mounted
at /config; the tracking server is a real `mlflow server --app-name basic-auth`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import REPO, parse_documents
from mlflow import MlflowClient
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from tests.servers import free_port
from tests.tiny import tiny_document

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _rendered_entrypoint() -> str:
    result = CliRunner().invoke(app, ["k8s", "render", str(REPO / "sweeps" / "quickstart.yaml")])
    assert result.exit_code == 0, result.output
    (rayjob,) = [d for d in parse_documents(result.stdout) if d["kind"] == "RayJob"]
    return rayjob["spec"]["entrypoint"]


def _tiny_sweep(tmp_path: Path, tracking_uri: str) -> dict[str, Any]:
    return tiny_document(
        name="k8s-job",
        data={"synthetic": {"samples_per_class": 12}},
        sweep={
            "space": {
                "name": "two-lrs",
                "parameters": {"lr_high": {"type": "choice", "values": [0.01, 0.03]}},
            },
            "search": {"algorithm": "random", "seed": 0},
            "scheduler": {"kind": "none"},
            "budget": {"num_samples": 2},
            "resources": {"cpus": 1, "gpus": 0},
            "storage": {"path": str(tmp_path / "runs")},
            "mlflow": {"tracking_uri": tracking_uri, "experiment": "k8s-job"},
            "final": {"top_n": 1, "seeds": [0]},
        },
    )


def _wait(check, what: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} not ready after {timeout_s}s")


def _dashboard_up(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _cpus(port: int, env: dict[str, str]) -> float:
    done = subprocess.run(
        [str(BIN / "ray"), "status", f"--address=127.0.0.1:{port}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in done.stdout.splitlines():
        if line.strip().endswith(" CPU") and "/" in line:
            return float(line.split("/")[1].split()[0])
    return 0.0


def _ray_logs(temp_dir: Path) -> str:
    """The tails of the head's dashboard logs, to tell why a submission failed."""
    tails = []
    for name in ("dashboard.log", "dashboard_agent.log"):
        path = temp_dir / "session_latest" / "logs" / name
        if path.is_file():
            tails.append(f"\n--- {name} ---\n" + path.read_text(errors="replace")[-2000:])
    return "".join(tails)


def _stop(processes: list[subprocess.Popen], marker: str) -> None:
    """Stop the nodes this test started, and only those (never `ray stop`, which stops all)."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Ray daemons that left the process group still name this test's own temp dir.
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    for pid in leftovers.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _own_ports() -> list[str]:
    # Ports Ray otherwise fixes (the agent's 52365, the client server's 10001) would clash
    # with another Ray cluster on the same machine, e.g. a test running beside this one.
    return [
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
    ]


def _start_nodes(
    tmp_path: Path, env: dict[str, str], port: int, temp_dir: Path, processes: list
) -> str:
    """Start the head (at ``port``) and the worker, with fresh ports; the dashboard's URL."""
    dashboard = free_port()
    ray = str(BIN / "ray")
    common = ["--node-ip-address=127.0.0.1", "--num-gpus=0", "--disable-usage-stats", "--block"]
    head = [
        ray, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=true",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={free_port()}", *_own_ports(), *common,
    ]  # fmt: skip
    worker = [ray, "start", f"--address=127.0.0.1:{port}", "--num-cpus=2", *_own_ports(), *common]
    address = f"http://127.0.0.1:{dashboard}"
    for command in (head, worker):
        log = (tmp_path / f"ray-{len(processes)}.log").open("wb")
        processes.append(
            subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )  # fmt: skip
        if command is head:
            _wait(lambda: _dashboard_up(address), "the Ray head's dashboard")
    _wait(lambda: _cpus(port, env) >= 2, "the Ray worker")
    return address


@pytest.fixture
def ray_nodes(tmp_path: Path, mlflow_server):
    """`ray start --head --num-cpus=0` and one worker with 2 CPUs, MLflow credentials in env.

    A start that does not come up (a port taken between its choice and its use, a raylet
    slow on a loaded machine) is stopped and tried once more with fresh ports.
    """
    home = tmp_path / "home"  # keeps a token in ~/.ray of another cluster out of this one
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_USERNAME": mlflow_server.admin_username,
        "MLFLOW_TRACKING_PASSWORD": mlflow_server.admin_password,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for name in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(name, None)
    for attempt in (1, 2):
        processes: list[subprocess.Popen] = []
        port = free_port()
        temp_dir = Path("/tmp") / f"ray-k8s-{port}"  # short: Ray's socket paths are limited
        try:
            address = _start_nodes(tmp_path, env, port, temp_dir, processes)
        except AssertionError:
            _stop(processes, str(temp_dir))
            shutil.rmtree(temp_dir, ignore_errors=True)
            if attempt == 2:
                raise
            continue
        try:
            yield address, env, temp_dir
        finally:
            _stop(processes, str(temp_dir))
            shutil.rmtree(temp_dir, ignore_errors=True)
        return


def test_ray_job_submit_of_the_entrypoint_tracks_the_sweep_in_mlflow(
    tmp_path, mlflow_server, ray_nodes, monkeypatch
):
    address, env, temp_dir = ray_nodes
    entrypoint = _rendered_entrypoint()
    assert entrypoint == "nbft sweep /config/sweep.yaml"
    sweep = tmp_path / "config" / "sweep.yaml"
    sweep.parent.mkdir()
    sweep.write_text(yaml.safe_dump(_tiny_sweep(tmp_path, mlflow_server.uri)))
    command = entrypoint.replace("/config/sweep.yaml", str(sweep))

    submit = [str(BIN / "ray"), "job", "submit", f"--address={address}", "--", *command.split()]
    deadline = time.monotonic() + 120
    while True:  # the head's job agent may start after its dashboard answers
        try:
            done = subprocess.run(
                submit, env=env, capture_output=True, text=True, timeout=420, cwd=tmp_path
            )
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"ray job submit ran over {error.timeout}s{_ray_logs(temp_dir)}")
        if "No available agent" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    output = done.stdout + done.stderr + _ray_logs(temp_dir)
    assert done.returncode == 0, output[-6000:]
    assert re.search(r"Job '\S+' succeeded", output), output[-6000:]

    # The runs reached the authenticated server: a parent run per sweep, a child per trial.
    for name, value in mlflow_server.client_env().items():
        monkeypatch.setenv(name, value)
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name("k8s-job")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    parents = [r for r in runs if not r.data.tags.get("mlflow.parentRunId")]
    assert parents, [r.data.tags for r in runs]
    assert len(children) >= 2, [r.data.tags for r in runs]
    assert any("val_accuracy" in r.data.metrics for r in children)
