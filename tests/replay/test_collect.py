"""nbft bench collect: a killed collection resumes without re-training finished points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nonbinary_ft.config import load_config
from nonbinary_ft.history.table import read_table
from nonbinary_ft.replay.collect import validation_size
from tests.tiny import tiny_document

pytestmark = pytest.mark.slow

GRID = {
    "name": "four",
    "parameters": {
        "lr_high": {"type": "grid", "values": [0.01, 0.1]},
        "l2sp_layers": {"type": "grid", "values": [0, "all"]},
        "alpha": {"type": "grid", "values": [0.01, 0.1]},  # unused without L2-SP: 6 points
    },
}


def _command(tmp_path: Path) -> list[str]:
    task = tiny_document(
        name="tiny-collect",
        train={"epochs": 3},
        analysis={"scratch": {"epochs": 2}},
        sweep={"resources": {"cpus": 1, "max_concurrent": 1}},
    )
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(GRID))
    nbft = Path(sys.executable).with_name("nbft")
    return [
        str(nbft), "bench", "collect", str(tmp_path / "task.yaml"),
        "--grid", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "table"), "--json",
    ]  # fmt: skip


def test_a_killed_collection_resumes_where_it_stopped(tmp_path):
    command = _command(tmp_path)
    points = tmp_path / "table" / "points"
    first = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(points.glob("*.json"))) < 2:
        assert first.poll() is None, "the collection ended before it could be killed"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    kept = {path.name: path.stat().st_mtime_ns for path in points.glob("*.json")}
    evidence = (tmp_path / "table" / "evidence.json").stat().st_mtime_ns
    assert 2 <= len(kept) < 6

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"6 runs, {len(kept)} done, {6 - len(kept)} to train" in second.stderr
    # Then the best point by seed 0 (10 % of 6, at least one) with seeds 1 and 2.
    assert "8 runs, 6 done, 2 to train" in second.stderr
    for name, mtime in kept.items():  # finished points are not trained again
        assert (points / name).stat().st_mtime_ns == mtime
    assert (tmp_path / "table" / "evidence.json").stat().st_mtime_ns == evidence
    summary = json.loads(second.stdout)
    assert summary["points"] == 6 and summary["epochs"] == 3 and summary["evidence"]
    table = read_table(tmp_path / "table")
    assert all(table.epochs_of(point) == 3 for point in range(6))
    repeated = np.flatnonzero(np.sum(~np.isnan(table.val_seeds), axis=1) == 3)
    assert len(repeated) == 1 and table.final_val[repeated[0]] == table.best_val
    assert table.val_images == validation_size(load_config(tmp_path / "task.yaml"))
    assert table.evidence.document["regime"]["label"] in ("fits_well", "fits_poorly", "unclear")
    assert len(table.evidence.scratch_val) == 2
    assert not (tmp_path / "table" / "work" / "ray").exists()  # Ray's copies are cleaned up
