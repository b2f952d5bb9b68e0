"""SweepTracker: the parent run per sweep and the child runs per trial, found again on resume."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from nonbinary_ft.tracking import SweepTracker


def test_parent_run_is_reopened_on_resume_and_new_otherwise(
    tracking_uri, artifact_root, fresh_name
):
    tracker = SweepTracker(tracking_uri, fresh_name, "file:///sweep/a", artifact_root)
    first = tracker.open_parent("a", resume=False)
    tracker.finish("FAILED")  # the driver died or failed
    again = SweepTracker(tracking_uri, fresh_name, "file:///sweep/a")
    assert again.open_parent("a", resume=True) == first
    client = MlflowClient(tracking_uri)
    assert client.get_run(first).info.status == "RUNNING"
    other = SweepTracker(tracking_uri, fresh_name, "file:///sweep/b")
    assert other.open_parent("b", resume=True) != first  # another sweep's key: a new parent


def test_child_runs_hold_settings_metrics_status_and_reason(
    tracking_uri, artifact_root, fresh_name
):
    tracker = SweepTracker(tracking_uri, fresh_name, "file:///sweep/c", artifact_root)
    parent = tracker.open_parent("c", resume=False)
    run_id = tracker.start_trial("search", "t1", {"lr_high": 0.5, "lr_new": None})
    tracker.log_epoch(run_id, {"val_accuracy": 0.25, "train_loss": 1.5}, step=1)
    tracker.end_trial(run_id, "pruned", "lr too high")
    failed = tracker.start_trial("search", "t2", {"lr_high": 0.01})
    tracker.end_trial(failed, "error", "worker died")
    tracker.start_trial("final", "t3", {"lr_high": 0.01})

    assert tracker.trial_runs("search") == {"t1": run_id, "t2": failed}
    assert tracker.last_step(run_id) == 1
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.data.params == {"lr_high": "0.5", "lr_new": "None"}
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags["nbft.status"] == "pruned"
    assert run.data.tags["nbft.prune_reason"] == "lr too high"
    assert run.info.status == "FINISHED"  # a pruned trial is an outcome, not a failure
    assert client.get_run(failed).info.status == "FAILED"
    tracker.delete_run(failed)
    assert tracker.trial_runs("search") == {"t1": run_id}


def test_parent_holds_inputs_decisions_and_summary(
    tracking_uri, artifact_root, fresh_name, tmp_path
):
    tracker = SweepTracker(tracking_uri, fresh_name, "file:///sweep/d", artifact_root)
    parent = tracker.open_parent("d", resume=False)
    sweep_file = tmp_path / "d.yaml"
    sweep_file.write_text("name: d\n")
    tracker.log_inputs(sweep_file, {"num_trials": 3}, "name: space\n")
    tracker.log_decisions([{"kind": "pruned_trial", "reason": "r", "trial_id": "t1"}], "s1")
    tracker.log_summary(
        {
            "best_settings": {"lr_high": 0.01},
            "best_val_accuracy": 0.75,
            "finals": [{"rank": 1, "mean": 0.7, "std": 0.05, "ensemble_accuracy": 0.8}],
        }
    )
    tracker.finish()

    client = MlflowClient(tracking_uri)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert run.data.params["best.lr_high"] == "0.01"
    assert run.data.metrics["final.test_accuracy_mean"] == 0.7
    assert run.data.metrics["final.test_accuracy_std"] == 0.05
    assert run.data.metrics["final.ensemble_accuracy"] == 0.8
    files = {f.path for f in client.list_artifacts(parent, "sweep")}
    assert {"sweep/d.yaml", "sweep/plan.json", "sweep/spaces.yaml", "sweep/summary.json"} <= files
    local = client.download_artifacts(parent, "pruning/decisions-s1.json", str(tmp_path))
    with open(local) as handle:
        assert json.load(handle)["decisions"][0]["reason"] == "r"
