"""Every benchmark runs, at a tiny size, and prints the JSON document it promises: a
benchmark that no longer imports, or whose output lost a key, fails here (two of them once
rotted unnoticed). The figures themselves are not checked: that is the benchmarks' job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tiny import tiny_document

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _benchmark(module: str, *args: str, timeout: int = 300) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture
def tiny_sweep(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    analysis = {"cache_dir": str(tmp_path / "cache"), "scratch": {"epochs": 1}}
    path.write_text(yaml.safe_dump(tiny_document(analysis=analysis)))
    return path


def test_throughput():
    result = _benchmark(
        "benchmarks.throughput", "--model", "test_resnet", "--size", "32", "--batch", "4",
        "--batches", "2", "--rounds", "1", "--device", "cpu",
    )  # fmt: skip
    assert {"bare_images_per_s", "trial_images_per_s", "ratio", "goal"} <= set(result)


def test_analysis_speed(tiny_sweep):
    result = _benchmark("benchmarks.analysis_speed", "--config", str(tiny_sweep), "--rounds", "1")
    cache = result["feature_cache"]
    assert {"feature_stage_speedup", "analysis_no_scratch_speedup"} <= set(cache)
    assert {"ratio_to_trial", "goal_met"} <= set(result["evidence_vs_epoch"])
    assert {"recommend_speedup", "recommend_goal_met"} <= set(result["recommend_cache"])


def test_sweep_overhead(tiny_sweep, tmp_path, monkeypatch, capsys):
    """In this process: the benchmark's fresh processes (each its own Ray and imports) would
    triple the time of a check that only needs the document's shape."""
    from benchmarks import sweep_overhead

    monkeypatch.setattr(sweep_overhead, "in_fresh_process", lambda function, *args: function(*args))
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")  # main sets it; restored after the test
    sweep_overhead.main(
        ["--sizes", "1", "2", "--epochs", "1", "--typical", str(tiny_sweep), "--typical-size",
         "32", "--workdir", str(tmp_path / "w")]
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert {"ratio", "goal_met", "fixed_s", "marginal_per_trial_s"} <= set(result)
    assert [sweep["trials"] for sweep in result["sweeps"]] == [1, 2]


def test_sweep_pruning(tmp_path, request):
    """Two trials a sweep on the small suite's near target, two epochs a trial; the suite is
    built into (or read from) the same cache as the transfer-suite tests'."""
    cache = request.config.cache.mkdir("nbft-transfer-suite")
    result = _benchmark(
        "benchmarks.sweep_pruning", "--size", "small", "--trials", "2", "--targets", "near",
        "--set", "train.epochs=2", "--set", "analysis.scratch.epochs=1",
        "--cache-dir", str(cache), "--workdir", str(tmp_path),
    )  # fmt: skip
    near = result["targets"]["near"]
    assert {"pruned_compute_to_unpruned_best_s", "pruned_total_over_unpruned_total"} <= set(near)
    assert {"analysis_s", "regime", "decisions_by_kind"} <= set(near["pruned"])
    assert len(near["unpruned"]["trials"]) == 2 and near["pruned"]["trials"]


def test_replay(tmp_path):
    from tests.replay.conftest import make_table

    tables = tmp_path / "tables"
    for name in ("a-one", "b-two"):
        make_table(tables / name, name=name)
    split = tmp_path / "split.yaml"
    split.write_text(yaml.safe_dump({"design": ["a-one"], "evaluation": ["b-two"]}))
    result = _benchmark(
        "benchmarks.replay", "--tables", str(tables), "--history", str(tables), "--split",
        str(split), "--strategies", "random,tpe_rush", "--seeds", "1", "--workers", "1",
        "--processes", "1", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert {"results", "summary", "science", "replay_s", "plots"} <= set(result)
    assert {row["strategy"] for row in result["results"]} == {"random", "tpe_rush"}


def test_sweep_scale_growth_and_plot_from_two_sizes(tmp_path):
    """The scale benchmark's own sweeps take minutes (tests/tuning/test_sweep_scale.py runs
    one of 200 trials); here its growth exponents and plot, on two measured sizes."""
    from benchmarks.sweep_scale import GROWING, TOTALS, growth, plot

    small = {name: 1.0 for name in GROWING + TOTALS} | {"trials": 100}
    large = {name: 1.0 for name in GROWING} | {name: 10.0 for name in TOTALS} | {"trials": 1000}
    exponents = growth({"100": small, "1000": large})
    assert all(exponents[name] == pytest.approx(1.0) for name in GROWING + TOTALS)
    plot({"100": small, "1000": large}, tmp_path / "scale.png")
    assert (tmp_path / "scale.png").stat().st_size > 10_000
