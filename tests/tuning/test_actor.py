"""Stage 1: the analysis runner, and the actor pruning a real sweep with its reason recorded
in MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.tuning.actor import AnalysisRunner
from nonbinary_ft.tuning.trainable import TrainableOptions


def _tiny(tmp_path, make_document, **sweep):
    document = make_document(tmp_path, "actor", **sweep)
    # A known from-scratch accuracy far above the random-init features' probe: the gap
    # decides 'fits_poorly' at once, without training a baseline.
    document["analysis"]["scratch"] = {"val_accuracy": 1.0}
    document["analysis"]["scores"] = ["fisher"]
    document["analysis"]["veto"] = True  # what these tests are about
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
