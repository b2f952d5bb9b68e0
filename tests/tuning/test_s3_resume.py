"""The real S3 path: Ray Tune's storage and MLflow's artifacts on ``s3://``, against moto's
S3 server on 127.0.0.1. The driver (``nbft sweep``, with its own local Ray) is killed with
SIGKILL mid-search, then ``--resume``d from S3: the sweep completes, no trial of the sweep
trains a finished epoch again, and MLflow holds one run per trial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.servers import S3_CREDENTIALS, moto_s3

pytestmark = pytest.mark.slow

BUCKET = "nbft-sweeps"
CREDENTIALS = S3_CREDENTIALS


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server with one bucket; yields its endpoint URL."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as endpoint:
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


def _client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, **{
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    })  # fmt: skip


def _result_lines(endpoint: str, prefix: str) -> dict[str, list[dict]]:
    """Each trial's result.json lines on S3, by trial id."""
    client = _client(endpoint)
    found = {}
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    for item in listing.get("Contents", []):
        key = item["Key"]
        if key.endswith("/result.json"):
            body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
            found[key.split("/")[-2]] = [json.loads(x) for x in body.splitlines() if x.strip()]
    return found


def _finished_checkpoints(endpoint: str, prefix: str) -> set[str]:
    """Trials whose last (second) epoch's checkpoint is on S3."""
    listing = _client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    return {
        key.split("/checkpoint_000001/")[0].split("/")[-1]
        for key in keys
        if "/checkpoint_000001/" in key
    }


def _trained_epochs(before: list[dict], after: list[dict]) -> list[int]:
    """The epochs a trial trained in both sessions, from its result lines seen before the kill
    and after the resume. Ray appends to the lines of a trial the restored experiment knew as
    finished; one it restores as running (it finished after the last snapshot) starts a new
    file, which holds only what the resumed session reported."""
    appended = after[: len(before)] == before
    lines = after if appended else before + after
    return [line["epoch"] for line in lines if not line.get("replayed")]


def _nbft(*args: str) -> list[str]:
    return [sys.executable, "-m", "nonbinary_ft.cli.main", *args]


def test_a_killed_driver_resumes_from_s3(s3, tmp_path, make_document):
    document = make_document(
        tmp_path,
        "s3sweep",
        space={
            "name": "lrs",
            "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02, 0.03]}},
        },
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 1, "max_concurrent": 1},  # one at a time: the kill lands mid-sweep
        final={"top_n": 1, "seeds": [0]},
        storage={"path": f"s3://{BUCKET}/sweeps", "endpoint_url": s3},
    )
    document["analysis"]["in_sweep"] = False  # not what this test is about
    sweep_file = tmp_path / "s3sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    env = {**os.environ, **CREDENTIALS, "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")  # the driver starts its own Ray, which dies with it
    prefix = "sweeps/s3sweep/search/"

    driver = subprocess.Popen(
        _nbft("sweep", str(sweep_file), "--json"), cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # A trial's last checkpoint reaches S3 as it is reported; its result.json only with the
        # driver's next experiment snapshot, too late to kill the driver mid-sweep.
        deadline = time.monotonic() + 300
        while not _finished_checkpoints(s3, prefix) and time.monotonic() < deadline:
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
        assert _finished_checkpoints(s3, prefix), "no trial finished on S3 within the time limit"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = _result_lines(s3, prefix)  # what the killed driver left on S3

    resumed = subprocess.run(
        _nbft("sweep", str(sweep_file), "--resume", "--json"), cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["counts"] == {"completed": 3}, resumed.stderr[-3000:]
    lines = _result_lines(s3, prefix)
    trials = {trial["trial_id"] for trial in summary["trials"]}
    for trial_id in trials:
        trained = _trained_epochs(before.get(trial_id, []), lines[trial_id])
        assert len(trained) == len(set(trained)), (trial_id, trained)  # none trained twice
        assert 2 in trained or any(line.get("replayed") for line in lines[trial_id])
    # A trial that finished within the last few seconds before the kill, before the
    # experiment state reached S3, is unknown to the restored sweep and runs again under a
    # new id: at most the one that the kill followed.
    assert len(set(lines) - trials) <= 1

    client = MlflowClient(summary["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name(summary["mlflow"]["experiment"])
    assert experiment.artifact_location.startswith(f"s3://{BUCKET}/sweeps/s3sweep/")
    children = client.search_runs(
        [experiment.experiment_id], "tags.`nbft.role` = 'trial' and tags.`nbft.stage` = 'search'"
    )
    assert sorted(run.data.tags["nbft.trial_id"] for run in children) == sorted(trials)
    artifacts = _client(s3).list_objects_v2(Bucket=BUCKET, Prefix="sweeps/s3sweep/mlartifacts/")
    keys = [item["Key"] for item in artifacts.get("Contents", [])]
    assert any(key.endswith("results/trials.json") for key in keys), keys[:20]
