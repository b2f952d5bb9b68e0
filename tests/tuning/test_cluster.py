"""Integration on a two-node Ray cluster (logical GPUs): one sweep, checked from every side.

The sweep samples (random search) a space that is too wide for test_resnet (L = 6), with a
pruning policy that turns on with the first result (evidence arriving mid-sweep), a worker
that dies once after its first epoch, and a learning rate that diverges. Then stage 3 re-runs
the best settings with two seeds. Search seed 4 draws lr_high 0.1, 0.01, 0.01, 1e8 for the
four trials that start together (one per GPU share).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.results import BEST_LABEL
from nonbinary_ft.search.policy import PruningPolicy
from nonbinary_ft.tuning.orchestrate import run_sweep
from nonbinary_ft.tuning.trainable import TrainableOptions
from tests.tiny import NUM_LAYERS

pytestmark = pytest.mark.slow

RULED_OUT = "test evidence: lr_high 0.1 fits poorly"


class RuledOutAfterFirstResult(PruningPolicy):
    """Rules out lr_high == 0.1 once any trial has reported."""

    def __init__(self) -> None:
        self.active = False

    def observe(
        self, trial_id: str, settings: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        self.active = True

    def rules_out(self, settings: Mapping[str, Any]) -> str | None:
        return RULED_OUT if self.active and settings["lr_high"] == 0.1 else None


@pytest.fixture(scope="module")
def sweep(ray_cluster, tmp_path_factory, make_config):
    tmp_path = tmp_path_factory.mktemp("cluster")
    flag = tmp_path / "worker-killed"

    def kill_once_after_first_epoch(metrics: dict[str, Any], trial_config: dict[str, Any]):
        if (
            trial_config["lr_high"] == 0.01
            and metrics["status"] == "running"
            and metrics["epoch"] == 1
            and not flag.exists()
        ):
            flag.touch()
            os._exit(1)  # the worker process dies without any cleanup

    config = make_config(
        tmp_path,
        "cluster",
        space={
            "name": "too_wide",
            "parameters": {
                # up to 10 on a model of 6 layers: the sweep must cap k at 5 and n, m at 6 - k
                "reinit_layers": {"type": "int", "low": 1, "high": 10},
                "low_layers": {"type": "int", "low": 0, "high": 10},
                "lr_low": {"type": "fixed", "value": 0.005},
                "l2sp_layers": {"type": "choice", "values": [0, 3, "all"]},
                "lr_high": {"type": "choice", "values": [0.01, 0.1, 1e8]},
            },
        },
        search={"algorithm": "random", "seed": 4},
        scheduler={"kind": "none"},
        budget={"num_samples": 4},
        resources={"cpus": 1, "gpus": 0.5, "max_concurrent": 4},
        max_failures=1,
        # Every ruled-out trial must stop here, even the best one so far.
        protect_top_fraction=0.0,
        final={"top_n": 1, "seeds": [0, 1]},
    )
    options = TrainableOptions(epoch_hook=kill_once_after_first_epoch)
    result = run_sweep(config, policy=RuledOutAfterFirstResult(), options=options)
    return result, flag


def _results(result: Any, stage: str, trial_id: str) -> list[dict[str, Any]]:
    path = Path(result.storage) / stage / trial_id / "result.json"
    return [json.loads(line) for line in path.open()]


def test_trials_spread_over_both_nodes_within_their_gpu_shares(sweep):
    result, _ = sweep
    started = [t for t in (*result.trials, *result.final_trials) if t.node_id is not None]
    assert len({t.node_id for t in started}) == 2
    # Each node has 1 GPU and a trial holds 0.5: never more than two trials at once on a node.
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for trial in started:
        attempts: dict[float, float] = {}  # a retried trial has one span per worker
        for line in _results(result, trial.stage, trial.trial_id):
            attempts[line["started_at"]] = max(
                attempts.get(line["started_at"], 0.0), line["reported_at"]
            )
        spans[trial.node_id].extend(attempts.items())
    for node_spans in spans.values():
        assert _most_at_once(node_spans) <= 2


def _most_at_once(spans: list[tuple[float, float]], slack_s: float = 0.5) -> int:
    """The most spans open at one instant; ends count before starts at equal times.

    Each span is shortened by ``slack_s`` at its end: a reused actor starts its next trial
    as soon as the last result of the previous one is in, while that trial's report
    timestamp can trail by a moment.
    """
    events = sorted(
        [(start, 1) for start, _ in spans] + [(end - slack_s, -1) for _, end in spans],
        key=lambda event: (event[0], event[1]),
    )
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


def test_no_trial_with_an_impossible_config_ever_starts(sweep):
    result, _ = sweep
    assert len(result.trials) == 4
    assert all(t.status != "error" for t in result.trials)
    for trial in result.trials:
        settings = TrialSettings.model_validate(trial.settings)
        settings.fit_to(NUM_LAYERS)  # raises on k > 5, or n, m > 6 - k
        assert settings.low_layers == 0 or settings.lr_low is not None


def test_policy_prunes_running_trials_and_the_reason_is_in_mlflow(sweep):
    result, _ = sweep
    ruled_out = [t for t in result.trials if t.settings["lr_high"] == 0.1]
    assert ruled_out
    for trial in ruled_out:  # stopped at their first result after the evidence arrived
        assert (trial.status, trial.prune_reason, trial.epochs) == ("pruned", RULED_OUT, 1)
    assert {d.trial_id for d in result.decisions if d.kind == "pruned_trial"} == {
        t.trial_id for t in ruled_out
    }

    client = MlflowClient(result.tracking_uri)
    experiment = client.get_experiment_by_name(result.mlflow_experiment)
    runs = client.search_runs(
        [experiment.experiment_id], "tags.`nbft.role` = 'trial' and tags.`nbft.stage` = 'search'"
    )
    by_trial = {run.data.tags["nbft.trial_id"]: run for run in runs}
    assert sorted(by_trial) == sorted(t.trial_id for t in result.trials)
    for trial in ruled_out:
        run = by_trial[trial.trial_id]
        assert run.data.tags["nbft.status"] == "pruned"
        assert run.data.tags["nbft.prune_reason"] == RULED_OUT
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [metric.step for metric in history] == [1]


def test_dead_worker_is_retried_from_its_checkpoint_and_nan_ends_as_diverged(sweep):
    result, flag = sweep
    assert flag.exists()  # a worker did die
    diverged = [t for t in result.trials if t.settings["lr_high"] == 1e8]
    assert diverged and all(t.status == "diverged" for t in diverged)
    survivors = [t for t in result.trials if t.settings["lr_high"] == 0.01]
    assert survivors and all(t.status == "completed" and t.epochs == 2 for t in survivors)
    # One survivor lost its worker after epoch 1: a new worker trained epoch 2 from epoch 1's
    # checkpoint, so its results read (epoch, resumed from) = (1, 0), (2, 1); nothing twice.
    histories = sorted(
        [(line["epoch"], line["resumed_from"]) for line in _results(result, "search", t.trial_id)]
        for t in survivors
    )
    assert histories == [[(1, 0), (2, 0)], [(1, 0), (2, 1)]]

    client = MlflowClient(result.tracking_uri)
    for trial in diverged:
        (run,) = client.search_runs(
            [client.get_experiment_by_name(result.mlflow_experiment).experiment_id],
            f"tags.`nbft.trial_id` = '{trial.trial_id}'",
        )
        assert run.data.tags["nbft.status"] == "diverged"


def test_final_runs_report_mean_std_and_seed_ensemble(sweep):
    result, _ = sweep
    best = result.best
    assert best is not None and best.settings["lr_high"] == 0.01
    # The binary baseline is re-run beside it with the same seeds.
    (final,) = [final for final in result.finals if final.label == BEST_LABEL]
    assert final.settings == best.settings and final.seeds == (0, 1)
    assert len(final.test_accuracies) == 2
    assert final.mean == pytest.approx(sum(final.test_accuracies) / 2)
    assert final.ensemble_accuracy is not None and 0.0 <= final.ensemble_accuracy <= 1.0
    assert sorted(t.seed for t in result.final_trials if t.rank == 1) == [0, 1]

    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id], "tags.`nbft.stage` = 'final'"
    )
    seeds = [run.data.params["train_seed"] for run in runs if run.data.params["final_rank"] == "1"]
    assert sorted(seeds) == ["0", "1"]
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["final.test_accuracy_mean"] == pytest.approx(final.mean)
    assert parent.data.metrics["final.ensemble_accuracy"] == pytest.approx(final.ensemble_accuracy)
    assert parent.data.params["best.lr_high"] == "0.01"
