"""Node loss: a worker node of a multi-node loopback cluster is removed mid-sweep.

The cluster is the test's own (a head without CPUs, two one-CPU workers, so each runs one
trial); the driver (``nbft sweep``) connects to it through RAY_ADDRESS, as on KubeRay. When
both trials have checkpointed an epoch and neither has finished, worker A is removed without
warning: A's trial continues on worker B from its last checkpoint, the sweep completes, no
finished epoch is trained again, and MLflow holds one run per trial.

Progress is read from the checkpoints in storage, which arrive as each epoch is reported;
result.json comes only with the driver's next experiment snapshot, too late to catch a trial
mid-run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def _lines(search: Path) -> dict[str, list[dict]]:
    found = {}
    for results in search.glob("*/result.json"):
        text = results.read_text().splitlines()
        found[results.parent.name] = [json.loads(line) for line in text if line.strip()]
    return found


EPOCHS = 8


def _both_mid_run(search: Path) -> bool:
    """Both trials have a checkpoint in storage and each still has half its epochs to train.

    Half, not one: an epoch takes about a second, and a trial one epoch from its end could
    finish on the doomed node before the node is gone (seen on a fast machine).
    """
    latest: dict[str, int] = {}
    for checkpoint in search.glob("*/checkpoint_*"):
        index = int(checkpoint.name.removeprefix("checkpoint_"))
        latest[checkpoint.parent.name] = max(index, latest.get(checkpoint.parent.name, -1))
    return len(latest) == 2 and max(latest.values()) < EPOCHS // 2


def test_a_lost_nodes_trial_continues_on_the_other_node(tmp_path, make_document):
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    doomed = cluster.add_node(num_cpus=1)
    survivor = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    document = make_document(
        tmp_path,
        "nodeloss",
        space={"name": "lrs", "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02]}}},
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 1, "max_concurrent": 2},
        final={"top_n": 0},
        max_failures=3,
    )
    document["analysis"]["in_sweep"] = False
    document["train"]["epochs"] = EPOCHS
    document["data"]["synthetic"]["samples_per_class"] = 48  # epochs of about a second
    sweep_file = tmp_path / "nodeloss.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    search = tmp_path / "runs" / "nodeloss" / "search"
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    try:
        driver = subprocess.Popen(
            [sys.executable, "-m", "nonbinary_ft.cli.main", "sweep", str(sweep_file), "--json"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while not _both_mid_run(search) and time.monotonic() < deadline:
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            time.sleep(0.2)
        assert _both_mid_run(search), "the two trials were not both mid-run in time"
        cluster.remove_node(doomed, allow_graceful=False)
        stdout, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, stderr[-3000:]
    finally:
        cluster.shutdown()

    assert stdout.lstrip().startswith("{"), stdout[:2000]
    summary = json.loads(stdout)
    assert summary["counts"] == {"completed": 2}
    found = _lines(search)
    (lost,) = [
        t for t, lines in found.items() if any(x.get("node_id") == doomed.node_id for x in lines)
    ]
    lines = found[lost]
    trained = [x["epoch"] for x in lines if not x.get("replayed")]
    assert trained == sorted(set(trained)) == list(range(1, EPOCHS + 1)), trained  # none twice
    assert lines[-1]["node_id"] == survivor.node_id  # it ended on the other node

    client = MlflowClient(summary["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name(summary["mlflow"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], "tags.`nbft.role` = 'trial'")
    assert sorted(r.data.tags["nbft.trial_id"] for r in runs) == sorted(found)
