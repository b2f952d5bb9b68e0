"""Which trial checkpoints the sweep deletes, and how often Ray snapshots a stage."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune import Checkpoint

from nonbinary_ft.tuning.checkpoints import (
    SNAPSHOT_PERIOD_S,
    CheckpointPruner,
    snapshot_period_s,
)


def checkpoints(tmp_path, trial, count, start=0):
    made = []
    for index in range(start, start + count):
        folder = tmp_path / trial / f"checkpoint_{index:06d}"
        folder.mkdir(parents=True)
        made.append(Checkpoint.from_directory(str(folder)))
    return made


def left(tmp_path, trial):
    return sorted(folder.name for folder in (tmp_path / trial).iterdir())


def test_a_snapshot_keeps_what_the_last_two_snapshots_name_and_anything_newer(tmp_path):
    pruner = CheckpointPruner()
    trial_a = SimpleNamespace(trial_id="a")

    def made(trial, count, start):
        for checkpoint in checkpoints(tmp_path, trial.trial_id, count, start):
            pruner.on_checkpoint(0, [], trial, checkpoint)

    made(trial_a, 3, 0)
    assert pruner.get_state() is None  # snapshot 1 names a/2
    assert left(tmp_path, "a") == ["checkpoint_000002"]
    made(trial_a, 2, 3)
    pruner.get_state()  # snapshot 2 names a/4; snapshot 1's a/2 must stay
    assert left(tmp_path, "a") == ["checkpoint_000002", "checkpoint_000003", "checkpoint_000004"]
    trial_b = SimpleNamespace(trial_id="b")
    made(trial_b, 2, 0)
    made(trial_a, 1, 5)
    pruner.get_state()  # snapshot 3 names a/5 and b/1
    assert left(tmp_path, "a") == ["checkpoint_000004", "checkpoint_000005"]
    assert left(tmp_path, "b") == ["checkpoint_000001"]
    made(trial_b, 2, 2)
    pruner.on_experiment_end([])  # no snapshot since (an exception): nothing more goes
    assert left(tmp_path, "b") == ["checkpoint_000001", "checkpoint_000002", "checkpoint_000003"]
    pruner.get_state()  # the final snapshot
    pruner.on_experiment_end([])  # ... is all a resume could read
    assert left(tmp_path, "a") == ["checkpoint_000005"]
    assert left(tmp_path, "b") == ["checkpoint_000003"]


def test_a_checkpoint_already_gone_is_no_error(tmp_path):
    pruner = CheckpointPruner()
    trial = SimpleNamespace(trial_id="a")
    first, second = checkpoints(tmp_path, "a", 2)
    (tmp_path / "a" / "checkpoint_000000").rmdir()
    pruner.on_checkpoint(0, [], trial, first)
    pruner.on_checkpoint(0, [], trial, second)
    pruner.get_state()
    assert left(tmp_path, "a") == ["checkpoint_000001"]


def test_the_snapshot_period_grows_with_the_planned_trials():
    assert snapshot_period_s(10) == SNAPSHOT_PERIOD_S
    assert snapshot_period_s(10_000) == 100 * snapshot_period_s(100)


def test_a_trial_that_starts_again_finds_its_newest_result_files_in_storage(tmp_path):
    import pyarrow.fs

    from nonbinary_ft.tuning.checkpoints import ResultFilesUploader

    staged, stored = tmp_path / "staged", tmp_path / "stored"
    staged.mkdir()
    stored.mkdir()
    storage = SimpleNamespace(
        trial_fs_path=str(stored), storage_filesystem=pyarrow.fs.LocalFileSystem()
    )
    trial = SimpleNamespace(trial_id="t1", local_path=str(staged), storage=storage)
    (stored / "result.json").write_text('{"epoch": 1}\n')  # the last snapshot's copy
    (staged / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (staged / "progress.csv").write_text("epoch\n1\n2\n")
    uploader = ResultFilesUploader()

    uploader.on_trial_start(0, [], trial)  # not reported to this driver: storage is newest
    assert (stored / "result.json").read_text() == '{"epoch": 1}\n'
    uploader.on_trial_result(0, [], trial, {"epoch": 2})
    uploader.on_trial_start(0, [], trial)  # retried: Ray's loggers read storage next
    assert (stored / "result.json").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    assert (stored / "progress.csv").read_text() == "epoch\n1\n2\n"
