"""Fidelity: a real one-worker Ray Tune sweep and the replay make the same decisions.

Both drive the same searcher and scheduler (built by the same strategy factory, same seed);
Ray's trials report the table's recorded epochs instead of training. The suggestions, in
order, and every stop (which trial, after which epoch) must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nonbinary_ft.replay.simulate import replay
from nonbinary_ft.replay.strategies import ReplayTask, make_setup
from nonbinary_ft.replay.table import read_table
from nonbinary_ft.replay.tabled import table_trainable
from nonbinary_ft.search.policy import settings_of

pytestmark = pytest.mark.slow

TRIALS = 10


def _ray_decisions(folder: Path, strategy: str, seed: int, storage: Path) -> list[tuple]:
    import ray
    from ray import tune
    from ray.tune import Callback, RunConfig, TuneConfig, Tuner

    table = read_table(folder)
    decisions: list[tuple] = []

    class Recorder(Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            decisions.append(("suggest", table.index_of(settings_of(trial.config))))

        def on_trial_complete(self, iteration, trials, trial, **info):
            point = table.index_of(settings_of(trial.config))
            epoch = trial.last_result["epoch"]
            decisions.append(("end" if epoch == table.epochs_of(point) else "stop", point, epoch))

    setup = make_setup(strategy, ReplayTask.from_table(table), seed)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        Tuner(
            tune.with_parameters(table_trainable, folder=str(folder)),
            tune_config=TuneConfig(
                search_alg=setup.searcher,
                scheduler=setup.scheduler,
                num_samples=TRIALS,
                max_concurrent_trials=1,
            ),
            run_config=RunConfig(storage_path=str(storage), verbose=0, callbacks=[Recorder()]),
        ).fit()
    finally:
        setup.cleanup()
        if started:
            ray.shutdown()
    return decisions


def _replay_decisions(folder: Path, strategy: str, seed: int) -> list[tuple]:
    table = read_table(folder)
    trace = replay(
        table, make_setup(strategy, ReplayTask.from_table(table), seed), 1, max_trials=TRIALS
    )
    return [
        ("suggest", event.point)
        if event.kind == "suggest"
        else (event.kind, event.point, event.epoch)
        for event in trace.events
    ]


def test_a_ray_sweep_and_the_replay_decide_alike(table_folder, tmp_path):
    strategy, seed = "tpe_asha", 3
    in_ray = _ray_decisions(table_folder, strategy, seed, tmp_path / "ray")
    replayed = _replay_decisions(table_folder, strategy, seed)
    assert [d for d in in_ray if d[0] == "suggest"] == [d for d in replayed if d[0] == "suggest"]
    assert in_ray == replayed
    assert any(d[0] == "stop" for d in replayed), "ASHA stopped nothing: the test lost its teeth"
