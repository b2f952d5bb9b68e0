"""Stage 1: the analysis runner, the regime policy, top-fraction protection, and the actor
pruning a real sweep with its reason recorded in MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.tuning import live
from nonbinary_ft.tuning.actor import AnalysisRunner, RegimePolicy
from nonbinary_ft.tuning.pruning import PruningPolicy, PruningScheduler
from nonbinary_ft.tuning.trainable import TrainableOptions

POORLY_SPACE = {
    "name": "fits_poorly",
    "parameters": {
        "reinit_layers": {"type": "fixed", "value": 1},
        "l2sp_layers": {"type": "fixed", "value": 0},
        "lr_high": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
    },
}


POORLY_SETTINGS = {
    "reinit_layers": 1,
    "lr_high": 0.01,
    "low_layers": 2,
    "lr_low": 0.004,
    "l2sp_layers": 0,
}


def _document(label="fits_poorly", provisional=False, gap=0.3):
    return {
        "regime": {
            "label": label,
            "provisional": provisional,
            "decided_by": "gap",
            "gap": gap,
            "fisher": 0.8,
        },
        "recommendation": {"settings": POORLY_SETTINGS, "space": POORLY_SPACE},
    }


def test_regime_policy_rules_out_settings_against_two_rows_of_table_7():
    policy = RegimePolicy(_document())
    assert policy.active
    one_row = {**POORLY_SETTINGS, "reinit_layers": 3}
    assert policy.rules_out(one_row) is None
    two_rows = {**one_row, "l2sp_layers": "all"}
    reason = policy.rules_out(two_rows)
    assert "2 of 3 rows" in reason and "fits_poorly" in reason and "gap +0.300" in reason
    assert "reinit_layers=3" in reason and "l2sp_layers='all'" in reason
    three_rows = {**two_rows, "low_layers": 0, "lr_low": None}
    assert "3 of 3 rows" in policy.rules_out(three_rows)
    # L2-SP at strength 0 is no L2-SP: that row agrees.
    assert policy.rules_out({**two_rows, "alpha": 0.0}) is None
    # Learning rates are left to the search: only the layer rows are pruned on.
    assert policy.rules_out({**POORLY_SETTINGS, "lr_high": 0.5, "lr_low": 0.4}) is None
    strict = RegimePolicy(_document(), min_rows=1)
    assert "1 of 3 rows" in strict.rules_out(one_row)


def test_a_strong_trial_in_the_ruled_out_region_reopens_it():
    policy = RegimePolicy(_document(), protect_top_fraction=0.5)
    against = {**POORLY_SETTINGS, "reinit_layers": 3, "l2sp_layers": "all"}
    alike = {**against, "reinit_layers": 2, "lr_high": 0.05}  # same answers on every row
    other = {**against, "low_layers": 0, "lr_low": None}  # different answers: 3 rows against
    running = {"epoch": 1, "status": "running"}
    policy.observe("in_region", against, {**running, "val_accuracy": 0.3})
    policy.observe("inside", POORLY_SETTINGS, {**running, "val_accuracy": 0.6})
    assert policy.rules_out(alike) is not None  # the region's trial ranks below the top half
    policy.observe("in_region", against, {**running, "val_accuracy": 0.9})
    assert policy.rules_out(alike) is None
    assert policy.rules_out(other) is not None
    # Without protection the regime's veto stands whatever the sweep shows.
    strict = RegimePolicy(_document())
    strict.observe("in_region", against, {**running, "val_accuracy": 0.9})
    strict.observe("inside", POORLY_SETTINGS, {**running, "val_accuracy": 0.6})
    assert strict.rules_out(alike) is not None


def test_no_veto_without_decisive_evidence():
    assert RegimePolicy(None).rules_out({"reinit_layers": 3}) is None
    assert not RegimePolicy(_document(label="unclear")).active
    provisional = _document(provisional=True)
    assert not RegimePolicy(provisional).active
    assert RegimePolicy(provisional, prune_on_provisional=True).active


class RulesOutEverything(PruningPolicy):
    def rules_out(self, settings):
        return "test: everything"


def test_top_fraction_of_trials_is_protected_from_pruning():
    key = "protect-test"
    live.register(key, policy=RulesOutEverything())
    try:
        scheduler = PruningScheduler(FIFOScheduler(), key, protect_top_fraction=0.25)
        trials = [SimpleNamespace(trial_id=f"t{i}", config={"lr_high": 0.01}) for i in range(4)]
        decisions = {}
        for trial, accuracy in zip(trials, [0.4, 0.9, 0.5, 0.6], strict=True):
            decisions[trial.trial_id] = scheduler.on_trial_result(
                None, trial, {"epoch": 1, "val_accuracy": accuracy, "status": "running"}
            )
        # t0 is judged alone (nothing to rank against yet) and stopped; t1 leads: protected.
        assert decisions == {
            "t0": TrialScheduler.STOP,
            "t1": TrialScheduler.CONTINUE,
            "t2": TrialScheduler.STOP,
            "t3": TrialScheduler.STOP,
        }
    finally:
        live.unregister(key)


def _tiny(tmp_path, make_document, **sweep):
    document = make_document(tmp_path, "actor", **sweep)
    # A known from-scratch accuracy far above the random-init features' probe: the gap
    # decides 'fits_poorly' at once, without training a baseline.
    document["analysis"]["scratch"] = {"val_accuracy": 1.0}
    document["analysis"]["scores"] = ["fisher"]
    return ExperimentConfig.model_validate(document)


def test_analysis_runner_publishes_a_decided_document(tmp_path, make_document):
    runner = AnalysisRunner(_tiny(tmp_path, make_document), tmp_path / "analysis")
    document = runner.run()
    assert runner.status()["done"] and runner.status()["error"] is None
    assert document["regime"]["label"] == "fits_poorly"
    assert not document["regime"]["provisional"]
    assert document["recommendation"]["space"]["parameters"]["l2sp_layers"] == {
        "type": "fixed",
        "value": 0,
    }


@pytest.mark.slow
def test_actor_prunes_the_ruled_out_region_and_mlflow_has_the_reason(
    ray_cluster, tmp_path, make_document
):
    from nonbinary_ft.tuning.orchestrate import run_sweep

    config = _tiny(
        tmp_path,
        make_document,
        space={
            "name": "with_a_bad_region",
            "parameters": {
                "l2sp_layers": {"type": "choice", "values": [0, "all"]},
                "reinit_layers": {"type": "choice", "values": [1, 2]},
                "lr_high": {"type": "fixed", "value": 0.01},
            },
        },
        search={"algorithm": "random", "seed": 1},
        scheduler={"kind": "none"},
        budget={"num_samples": 10},
        resources={"cpus": 1, "gpus": 0, "max_concurrent": 1},
        final={"top_n": 0},
    )
    # Slow trials down so that the evidence arrives while the search is still sampling.
    options = TrainableOptions(epoch_hook=lambda metrics, trial_config: time.sleep(2))
    result = run_sweep(config, options=options)
    pruned = [d for d in result.decisions if d.kind in ("pruned_sample", "pruned_trial")]
    assert pruned, "the analysis actor pruned nothing"
    for decision in pruned:
        assert "fits_poorly" in decision.reason and "against table 7" in decision.reason
    # Only the region built to be ruled out (L2-SP everywhere, or more than the head
    # re-initialised, each with no low layers: two rows against fits_poorly) was pruned.
    assert all(
        d.settings["l2sp_layers"] == "all" or d.settings["reinit_layers"] == 2 for d in pruned
    )

    client = MlflowClient(result.tracking_uri)
    artifacts = [a.path for a in client.list_artifacts(result.parent_run_id, "pruning")]
    assert artifacts
    local = client.download_artifacts(result.parent_run_id, artifacts[0], str(tmp_path))
    logged = json.loads(Path(local).read_text())
    assert any("fits_poorly" in row["reason"] for row in logged["decisions"])
