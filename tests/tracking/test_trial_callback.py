"""The driver's Ray Tune callback that writes child runs: one run per trial across resumes."""

from __future__ import annotations

from types import SimpleNamespace

import ray.cloudpickle as pickle
from mlflow.tracking import MlflowClient

from nonbinary_ft.tracking import SweepTracker
from nonbinary_ft.tuning.callbacks import MlflowTrialCallback
from nonbinary_ft.tuning.progress import ProgressCallback
from nonbinary_ft.tuning.session import close_session, open_session


def _trial(trial_id: str, ray_status: str = "RUNNING", **last):
    return SimpleNamespace(
        trial_id=trial_id, config={"lr_high": 0.01}, status=ray_status, last_result=dict(last)
    )


def _result(epoch: int, **extra):
    return {
        "epoch": epoch,
        "val_accuracy": 0.1 * epoch,
        "train_loss": 1.0,
        "status": "running",
        "training_iteration": epoch,
        "time_total_s": 3.0,
        "node_id": "n1",
        **extra,
    }


def _setup(tracking_uri, artifact_root, name):
    tracker = SweepTracker(tracking_uri, name, f"key://{name}", artifact_root)
    parent = tracker.open_parent(name, resume=False)
    callback = MlflowTrialCallback(tracking_uri, name, f"key://{name}", parent, "search")
    return tracker, callback


def _steps(tracking_uri, run_id):
    history = MlflowClient(tracking_uri).get_metric_history(run_id, "val_accuracy")
    return [metric.step for metric in history]


def test_epochs_are_logged_once_with_step_epoch(tracking_uri, artifact_root, fresh_name):
    tracker, callback = _setup(tracking_uri, artifact_root, fresh_name)
    trial = _trial("t1")
    callback.on_trial_start(0, [trial], trial)
    for epoch in (1, 2, 2):  # the last one: a finished trial's result reported again
        callback.on_trial_result(0, [trial], trial, _result(epoch))
    trial.last_result = _result(2, status="completed")
    callback.on_trial_complete(0, [trial], trial)

    (run_id,) = tracker.trial_runs("search").values()
    assert _steps(tracking_uri, run_id) == [1, 2]
    run = MlflowClient(tracking_uri).get_run(run_id)
    assert run.data.tags["nbft.status"] == "completed" and run.data.tags["nbft.node_id"] == "n1"
    assert "time_total_s" not in run.data.metrics and "epoch" not in run.data.metrics


def test_restored_callback_continues_the_same_runs(tracking_uri, artifact_root, fresh_name):
    tracker, callback = _setup(tracking_uri, artifact_root, fresh_name)
    early, late = _trial("t1"), _trial("t2")
    callback.on_trial_start(0, [early], early)
    callback.on_trial_result(0, [early], early, _result(1))
    state = callback.get_state()  # Ray's last snapshot before the driver died
    callback.on_trial_result(0, [early], early, _result(2))  # logged after the snapshot
    callback.on_trial_start(0, [early, late], late)  # a trial the snapshot never saw
    callback.on_trial_result(0, [early, late], late, _result(1))

    # A new driver: the callback comes back from Ray's pickle, then gets the saved state.
    restored = pickle.loads(pickle.dumps(callback))
    restored.set_state(state)
    early_again = _trial("t1")
    restored.on_trial_start(0, [early_again], early_again)
    restored.on_trial_result(0, [early_again], early_again, _result(2))  # already in MLflow
    early_again.last_result = _result(2, status="completed")
    restored.on_trial_complete(0, [early_again], early_again)
    restored.on_experiment_end([early_again])  # t2 was lost with the snapshot

    runs = tracker.trial_runs("search")
    assert list(runs) == ["t1"]  # exactly one run per trial: t2's orphan run is deleted
    assert _steps(tracking_uri, runs["t1"]) == [1, 2]
    assert MlflowClient(tracking_uri).get_run(runs["t1"]).data.tags["nbft.status"] == "completed"


def test_node_is_tagged_when_it_changes_not_every_epoch(
    tracking_uri, artifact_root, fresh_name, monkeypatch
):
    tracker, callback = _setup(tracking_uri, artifact_root, fresh_name)
    tagged = []
    set_tags = SweepTracker.set_tags
    monkeypatch.setattr(
        SweepTracker,
        "set_tags",
        lambda self, run_id, tags: tagged.append(dict(tags)) or set_tags(self, run_id, tags),
    )
    trial = _trial("t1")
    callback.on_trial_start(0, [trial], trial)
    for epoch, node in ((1, "n1"), (2, "n1"), (3, "n2")):  # retried on another node
        callback.on_trial_result(0, [trial], trial, _result(epoch, node_id=node))

    assert tagged == [{"nbft.node_id": "n1"}, {"nbft.node_id": "n2"}]
    (run_id,) = tracker.trial_runs("search").values()
    assert MlflowClient(tracking_uri).get_run(run_id).data.tags["nbft.node_id"] == "n2"


def test_progress_snapshot_counts_trials_and_finds_the_best():
    seen = []
    open_session("key://progress", listener=seen.append)
    try:
        callback = ProgressCallback("key://progress", "search", total=4, every_s=0.0)
        trials = [
            _trial("a", "RUNNING", epoch=1, val_accuracy=0.4, status="running"),
            _trial("b", "TERMINATED", epoch=2, val_accuracy=0.7, status="completed"),
            _trial("c", "TERMINATED", epoch=1, val_accuracy=0.2, status="pruned"),
            _trial("d", "PENDING"),
        ]
        callback.on_step_end(0, trials)
    finally:
        close_session("key://progress")
    (snapshot,) = seen
    assert snapshot.counts == {"running": 1, "completed": 1, "pruned": 1, "pending": 1}
    assert snapshot.best_val_accuracy == 0.7 and snapshot.best_trial == "b"
