"""--resume retries the trials that ended in error, from their last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nonbinary_ft.tuning.orchestrate import run_sweep
from nonbinary_ft.tuning.trainable import TrainableOptions

pytestmark = pytest.mark.slow


def test_resume_retries_an_errored_trial_and_it_completes(ray_cluster, tmp_path, make_config):
    config = make_config(
        tmp_path,
        "errored",
        space={"name": "g", "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02]}}},
        search={"algorithm": "grid"},
        scheduler={"kind": "none"},
        resources={"cpus": 1, "max_concurrent": 1},
        max_failures=0,
        final={"top_n": 0},
    )
    config = config.model_copy(
        update={"analysis": config.analysis.model_copy(update={"in_sweep": False})}
    )

    def fail_after_first_epoch(metrics, trial_config):  # a closure: Ray pickles it by value
        if trial_config.get("lr_high") == 0.02 and metrics.get("epoch") == 1:
            raise RuntimeError("injected: a fault the user then fixes")

    first = run_sweep(config, options=TrainableOptions(epoch_hook=fail_after_first_epoch))
    assert first.counts() == {"completed": 1, "error": 1}
    resumed = run_sweep(config, resume=True)
    assert resumed.counts() == {"completed": 2}
    retried = next(t for t in resumed.trials if t.settings["lr_high"] == 0.02)
    assert [record.epoch for record in retried.history] == [1, 2]
    # It went on from its checkpoint after epoch 1: epoch 1 was trained once.
    lines = (Path(resumed.storage) / "search" / retried.trial_id / "result.json").read_text()
    reports = [json.loads(line) for line in lines.splitlines() if line.strip()]
    assert [(r["epoch"], r["resumed_from"]) for r in reports] == [(1, 0), (2, 1)]
