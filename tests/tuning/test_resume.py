"""Resume: the driver (``nbft sweep``) is stopped with Ctrl-C mid-sweep, then ``--resume``d.

The driver runs as a subprocess connected to the tests' cluster through RAY_ADDRESS, as on a
KubeRay cluster; the cluster outlives it. Ctrl-C (SIGINT to its process group) stops the sweep
there: exit status 130, no final stage. The resumed sweep completes, no trial trains an epoch
twice (finished trials are not re-run), and MLflow holds exactly one parent run and one child
run per trial. Resuming the finished sweep once more reads its stages' results without
fitting them again. (A driver killed with SIGKILL: ``test_s3_resume``.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from nonbinary_ft.tuning.stages import COMPLETED_FILE

pytestmark = pytest.mark.slow


def _nbft(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "nonbinary_ft.cli.main", *args]


def _env(address: str) -> dict[str, str]:
    return {**os.environ, "RAY_ADDRESS": address}


def _resume(sweep_file: Path, address: str) -> dict:
    """``nbft sweep --resume --json`` in the sweep file's folder: its summary."""
    resumed = subprocess.run(
        _nbft("sweep", str(sweep_file), "--resume", "--json", cwd=sweep_file.parent),
        cwd=sweep_file.parent,
        env=_env(address),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return json.loads(resumed.stdout)


def _finished_trials(search: Path) -> set[str]:
    """Trials whose last epoch's checkpoint is in storage.

    A checkpoint reaches storage as its epoch is reported; result.json comes only with the
    driver's next experiment snapshot, too late to kill the driver mid-sweep.
    """
    return {checkpoint.parent.name for checkpoint in search.glob("*/checkpoint_000001")}


def test_killed_driver_resumes_without_rerunning_or_duplicating(
    ray_cluster, tmp_path, make_document
):
    document = make_document(
        tmp_path,
        "resume",
        space={
            "name": "lrs",
            "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02, 0.03, 0.04]}},
        },
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 1, "max_concurrent": 1},  # one at a time: the kill lands mid-sweep
        final={"top_n": 1, "seeds": [0]},
    )
    # Stage 1 off: whether its evidence arrives before the trials end depends on the machine's
    # load, and a pruned grid point is not what this test is about.
    document["analysis"]["in_sweep"] = False
    sweep_file = tmp_path / "resume.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    search = tmp_path / "runs" / "resume" / "search"

    driver = subprocess.Popen(
        _nbft("sweep", str(sweep_file), "--json", cwd=tmp_path),
        cwd=tmp_path,
        env=_env(ray_cluster.address),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed as a whole
    )
    try:
        deadline = time.monotonic() + 240
        while not _finished_trials(search) and time.monotonic() < deadline:
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.25)
        finished_before = _finished_trials(search)
        assert finished_before, "no trial finished within the time limit"
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C in the driver's terminal
        assert driver.wait(timeout=120) == 130
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert not (tmp_path / "runs" / "resume" / "final").exists()  # stopped mid-search
    assert not (search / COMPLETED_FILE).exists()  # an interrupted stage is not completed

    summary = _resume(sweep_file, ray_cluster.address)

    trials = summary["trials"]
    assert summary["counts"] == {"completed": 4}
    assert sorted(t["settings"]["lr_high"] for t in trials) == [0.01, 0.02, 0.03, 0.04]
    ids = {t["trial_id"] for t in trials}
    assert finished_before <= ids  # the finished trials kept their identity
    for trial_id in ids:
        lines = [json.loads(line) for line in (search / trial_id / "result.json").open()]
        trained = [line["epoch"] for line in lines if not line.get("replayed")]
        assert trained == sorted(set(trained)), (trial_id, trained)  # no epoch trained twice
        # An epoch that ended after the driver's last snapshot is missing from the file; the
        # resumed trial then reports it from its stored final checkpoint, marked replayed.
        assert sorted({line["epoch"] for line in lines}) == [1, 2], (trial_id, lines)
    # Rank 0, when there, is the binary baseline re-run beside the best setting.
    (final,) = [final for final in summary["finals"] if final["rank"] == 1]
    assert final["settings"] == summary["best_settings"] and len(final["test_accuracies"]) == 1

    client = MlflowClient(summary["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name(summary["mlflow"]["experiment"])
    parents = client.search_runs([experiment.experiment_id], "tags.`nbft.role` = 'sweep'")
    assert [run.info.run_id for run in parents] == [summary["mlflow"]["parent_run_id"]]
    assert parents[0].info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], "tags.`nbft.role` = 'trial' and tags.`nbft.stage` = 'search'"
    )
    assert sorted(run.data.tags["nbft.trial_id"] for run in children) == sorted(ids)
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert steps == [1, 2]
        assert run.data.tags["nbft.status"] == "completed"

    # The finished sweep resumed again: each stage's results are read, not fitted again
    # (a fit would write a new experiment state and append to the result files).
    def stored(stage: str) -> dict[str, str]:
        folder = tmp_path / "runs" / "resume" / stage
        files = [*folder.glob("experiment_state-*.json"), *folder.glob("*/result.json")]
        return {str(path.relative_to(folder)): path.read_text() for path in files}

    before = {stage: stored(stage) for stage in ("search", "final")}
    repeated = _resume(sweep_file, ray_cluster.address)
    assert {stage: stored(stage) for stage in ("search", "final")} == before
    assert repeated["best_settings"] == summary["best_settings"]
    assert repeated["trials"] == summary["trials"]  # times too: they count from one origin
    assert [f["test_accuracies"] for f in repeated["finals"]] == [
        f["test_accuracies"] for f in summary["finals"]
    ]
