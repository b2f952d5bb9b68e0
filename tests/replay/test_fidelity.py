"""Fidelity: a real one-worker Ray Tune sweep and the replay make the same decisions.

Both drive the same searcher and scheduler (built by the same strategy factory, same seed);
Ray's trials report the table's recorded epochs instead of training. The suggestions, in
order, and every stop (which trial, after which epoch) must be the same, for every strategy
the replay scores but ``one_epoch_topk`` (a replay-only baseline whose paused trials never
end). 'nbft' waits for the evidence (it arrives on a timer in Ray, after the analysis's
recorded seconds in the replay), tries a past sweep's winners, then TPE, with RUSH stops.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nonbinary_ft.history.table import read_table
from nonbinary_ft.replay.simulate import replay
from nonbinary_ft.replay.strategies import LEARNERS, STRATEGIES, ReplayTask, make_setup
from nonbinary_ft.replay.tabled import table_trainable
from nonbinary_ft.search.policy import settings_of
from tests.replay.conftest import make_table

pytestmark = pytest.mark.slow

TRIALS = 10
REAL = [name for name in STRATEGIES if name != "one_epoch_topk"]


@pytest.fixture(scope="module")
def one_cpu_ray():
    """One Ray for the module: one trial at a time, as the one-worker replay."""
    import ray

    started = not ray.is_initialized()
    if started:
        # address="local": a Ray of its own, not the cluster a stale /tmp/ray/ray_current_cluster
        # (left by a killed ray.cluster_utils.Cluster) points at.
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _ray_decisions(
    folder: Path, strategy: str, seed: int, storage: Path, history: list[Path]
) -> list[tuple]:
    from ray import tune
    from ray.tune import Callback, RunConfig, TuneConfig, Tuner

    table = read_table(folder)
    decisions: list[tuple] = []
    evidence_at: list[float] = []

    class Recorder(Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            assert evidence_at or setup.on_evidence is None, "a trial started before evidence"
            decisions.append(("suggest", table.index_of(settings_of(trial.config))))

        def on_trial_complete(self, iteration, trials, trial, **info):
            point = table.index_of(settings_of(trial.config))
            epoch = trial.last_result["epoch"]
            decisions.append(("end" if epoch == table.epochs_of(point) else "stop", point, epoch))

    setup = make_setup(
        strategy,
        ReplayTask.from_table(table),
        seed,
        [read_table(path).as_past_sweep() for path in history],
    )
    if setup.on_evidence is not None:
        on_evidence = setup.on_evidence

        def arrive() -> None:
            evidence_at.append(time.monotonic())
            on_evidence()

        threading.Timer(1.0, arrive).start()
    try:
        Tuner(
            tune.with_parameters(table_trainable, folder=str(folder)),
            tune_config=TuneConfig(
                search_alg=setup.searcher,
                scheduler=setup.scheduler,
                num_samples=TRIALS,
                max_concurrent_trials=1,
                reuse_actors=True,
            ),
            run_config=RunConfig(storage_path=str(storage), verbose=0, callbacks=[Recorder()]),
        ).fit()
    finally:
        setup.cleanup()
    return decisions


def _replay_decisions(folder: Path, strategy: str, seed: int, history: list[Path]) -> list[tuple]:
    table = read_table(folder)
    past = [read_table(path).as_past_sweep() for path in history]
    setup = make_setup(strategy, ReplayTask.from_table(table), seed, past)
    trace = replay(table, setup, 1, max_trials=TRIALS)
    return [
        ("suggest", event.point)
        if event.kind == "suggest"
        else (event.kind, event.point, event.epoch)
        for event in trace.events
    ]


@pytest.mark.parametrize("strategy", REAL)
def test_a_ray_sweep_and_the_replay_decide_alike(strategy, table_folder, tmp_path, one_cpu_ray):
    # A learner's past sweep is the task without its best point: its winners are tried
    # first, the weaker of them stopped by RUSH, and the sampler must find the best.
    best = int(np.nanargmax(read_table(table_folder).final_val))
    history = [make_table(tmp_path / "past", skip=best)] if strategy in LEARNERS else []
    seed = 1
    in_ray = _ray_decisions(table_folder, strategy, seed, tmp_path / "ray", history)
    replayed = _replay_decisions(table_folder, strategy, seed, history)
    # The replay ends once it has the table's best (its regret is 0 from there); Ray goes on.
    assert [d for d in replayed if d[0] == "suggest"]
    assert in_ray[: len(replayed)] == replayed
    if strategy in ("tpe_asha", "nbft"):
        assert any(d[0] == "stop" for d in replayed), "no early stop: the test lost its teeth"
    if strategy == "nbft":
        past = read_table(history[0])
        assert replayed[0] == ("suggest", int(np.nanargmax(past.final_val)))
