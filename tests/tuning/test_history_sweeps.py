"""Learning from past sweeps through real Ray Tune: sweeps in sequence.

The first sweep (search 'nbft', no history yet, the prior off; stage 1 from its start) leaves
its evidence and ranking on its MLflow parent run and in the user's history store. A second
sweep, with the default search (the same model's past sweeps first; stage 1 after the
search, which does not use it) and tracked on another MLflow store, finds it in the user
store and starts from its winners: the warm starts are logged, run first and saved with
Ray's experiment snapshots. A third ('nbft', which waits for the
evidence), on the first's tracking store, killed with SIGKILL in the middle of its warm
start and resumed,
runs each warm start exactly once, logs them once, and its sampler still knows every trial
(TPE's state survives ``--resume``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.history.store import read_user_store
from nonbinary_ft.search.policy import DecisionLog
from nonbinary_ft.search.transfer import zero_shot_points
from nonbinary_ft.tracking.history import read_history
from nonbinary_ft.tuning.orchestrate import DECISIONS_FILE, run_sweep
from nonbinary_ft.vocabulary import DecisionKind

pytestmark = pytest.mark.slow

SPACE = {
    "name": "lr-and-k",
    "parameters": {
        "lr_high": {"type": "float", "low": 0.005, "high": 0.2, "log": True},
        "reinit_layers": {"type": "int", "low": 1, "high": 3},
    },
}


def _document(
    tmp_path: Path, make_document, name: str, store: str, algorithm: str | None = "nbft", **sweep
) -> dict:
    """A sweep of ``algorithm`` (None: the default search) on the tiny experiment."""
    search = {"seed": 1, "warm_start": 3, "prior": False}
    if algorithm is not None:
        search["algorithm"] = algorithm
    sweep = {
        "space": SPACE,
        "search": {**search, "history_store": str(tmp_path / "user-store")},
        "budget": {"num_samples": 4},
        "resources": {"cpus": 1, "max_concurrent": 1},
        "mlflow": {"tracking_uri": store},
        "final": {"top_n": 1, "seeds": [0]},
        **sweep,
    }
    return make_document(tmp_path, name, **sweep)


def _warm_starts(folder: Path) -> list[dict]:
    decisions = DecisionLog.read(folder / DECISIONS_FILE)
    return [d.settings for d in decisions if d.kind == DecisionKind.WARM_START]


def _point(settings: dict) -> tuple:
    return (round(settings["lr_high"], 12), settings["reinit_layers"])


@contextlib.contextmanager
def _inside(folder: Path):
    """Run in ``folder``: MLflow puts a SQLite store's artifacts under ./mlruns."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def first_sweep(ray_cluster, tmp_path_factory, make_document):
    """The store's first sweep: nothing to learn from yet."""
    tmp_path = tmp_path_factory.mktemp("history")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    document = _document(tmp_path, make_document, "first", store)
    with _inside(tmp_path):
        run = run_sweep(ExperimentConfig.model_validate(document))
    assert run.counts() == {"completed": 4}
    assert _warm_starts(tmp_path / "runs" / "first") == []
    # 'nbft' acts on stage 1's evidence: the analysis ran beside the search, not after it
    # (the actor's process starts beside the first trial's, in either order).
    assert _analysis_started(run) < max(trial.ended_at for trial in run.trials)
    return tmp_path, store, run


def _analysis_started(run) -> float:
    """When stage 1 started, in seconds since the sweep's start (as trials count)."""
    origin = datetime.fromisoformat(run.results.environment.started_at).timestamp()
    return run.results.analysis.extra["started_at"] - origin


def test_a_second_sweep_elsewhere_starts_from_the_first(first_sweep, make_document):
    tmp_path, store, first = first_sweep
    (past,) = read_history(store)
    assert past.name == "first"
    (kept,) = read_user_store(tmp_path / "user-store")
    assert kept.source == past.source and kept.origin.startswith("user store")
    # Another tracking store: only the user's history store knows the first sweep.
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    document = _document(tmp_path, make_document, "second", elsewhere, algorithm=None)
    with _inside(tmp_path):
        run = run_sweep(ExperimentConfig.model_validate(document))

    assert run.counts() == {"completed": 4}
    # No setting trained twice: the sampler's random start (same seed as the first sweep)
    # proposes the first sweep's points again, which are the warm starts.
    assert len({_point(trial.settings) for trial in run.trials}) == 4
    warm = _warm_starts(tmp_path / "runs" / "second")
    # The same model's portfolio: the first sweep's best first, then (the tiny task ties
    # accuracies) its other settings in the portfolio's order.
    portfolio = zero_shot_points([past], 3, "test_resnet")
    assert [_point(s) for s in warm] == [_point(point.settings) for point in portfolio]
    best = max(trial.final_val_accuracy for trial in first.trials)
    (first_warm,) = [t for t in first.trials if _point(t.settings) == _point(warm[0])]
    assert first_warm.final_val_accuracy == best
    # One trial at a time: the first three to start are the warm starts, in order.
    started = [_point(t.settings) for t in sorted(run.trials, key=lambda t: t.started_at)]
    assert started[:3] == [_point(s) for s in warm]
    # The default search never looks at stage 1's evidence: stage 1 ran once the search was
    # over, and the report still has its from-scratch baseline.
    assert _analysis_started(run) >= max(trial.ended_at for trial in run.trials) - 0.01
    assert isinstance(run.results.analysis.scratch_accuracy, float)
    # It is kept beside the first.
    assert {p.name for p in read_user_store(tmp_path / "user-store")} == {"first", "second"}


def _finished_trials(search: Path) -> list[str]:
    done = []
    for results in search.glob("*/result.json"):
        lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if any(line.get("done") for line in lines):
            done.append(results.parent.name)
    return done


def test_a_sweep_killed_in_its_warm_start_resumes_it_once(
    first_sweep, ray_cluster, make_document
):
    tmp_path, store, _ = first_sweep
    document = _document(tmp_path, make_document, "killed", store, budget={"num_samples": 5})
    sweep_file = tmp_path / "killed.yaml"
    sweep_file.write_text(yaml.safe_dump(document))
    folder = tmp_path / "runs" / "killed"
    command = [sys.executable, "-m", "nonbinary_ft.cli.main", "sweep", str(sweep_file), "--json"]
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}

    driver = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        # A trial's checkpoints reach storage as it reports them, its result file only with
        # the driver's next snapshot: the first trial to checkpoint its last (second) epoch
        # is the earliest sign that the warm start is under way.
        deadline = time.monotonic() + 240
        while not any((folder / "search").glob("*/checkpoint_000001")):
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < deadline, "no trial finished within the time limit"
            time.sleep(0.25)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    warm = _warm_starts(folder)
    assert len(warm) >= 2, "the history gave fewer than two warm starts"
    assert len(_finished_trials(folder / "search")) < len(warm), "killed after the warm start"

    resumed = subprocess.run(
        [*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["counts"] == {"completed": 5}
    # The warm starts were chosen and logged once, and each ran exactly once.
    assert _warm_starts(folder) == warm
    points = [_point(trial["settings"]) for trial in summary["trials"]]
    for settings in warm:
        assert points.count(_point(settings)) == 1, (settings, points)
    # The sampler's study, as Ray saved it last, holds every trial of both drivers.
    (state_file,) = sorted((folder / "search").glob("searcher-state-*.pkl"))[-1:]
    state = pickle.loads(state_file.read_bytes())
    study = state["sampler"]._ot_study
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert {_point(t.params) for t in complete} == set(points)
    fixed = [t.system_attrs.get("fixed_params") for t in study.trials]
    enqueued = [_point(params) for params in fixed if params]
    assert enqueued == [_point(s) for s in warm]
