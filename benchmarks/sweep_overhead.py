"""Orchestration overhead of a sweep: what run_sweep spends around its trials, per trial.

A sweep of very short trials (test_resnet, 32 px synthetic images, 3 classes; by default 8
trials x 2 epochs, TPE, ASHA, stage 1 off with ``analysis.in_sweep: false``, no final runs)
runs on a local Ray started by this script with ``ray.init(num_cpus=N)``; Ray's start-up is
timed on its own and is NOT part of the overhead. The sweep is timed from the ``run_sweep``
call to its return, which includes MLflow, the search stage and the report (the results
files, report.html/md): a breakdown says which.

Overhead per trial = (wall x concurrency - sum of trial times) / trials, i.e. the slot-seconds
not spent inside a trial (with the default concurrency 1: (wall - sum) / trials), as a fraction
of the median trial. Goal: <= 2 %. A trial's time is Ray's ``time_total_s`` of its last result
(the trial function from its start to its last report: model and data set-up, training,
evaluation, checkpoints); the sum of the reported ``epoch_time_s`` (the training loop alone) is
printed beside it, with the overhead it would give.

    python -m benchmarks.sweep_overhead [--trials 8] [--epochs 2] [--cpus 2] [--concurrent 1]

Prints one JSON document on stdout (logs go to stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nonbinary_ft.config import ExperimentConfig

GOAL = 0.02

# test_resnet has L = 6 layers; 3 generated classes of 32 px images keep a trial at seconds.
TINY: dict[str, Any] = {
    "model": {"name": "test_resnet", "pretrained": "none", "image_size": 32},
    "data": {
        "kind": "synthetic",
        "batch_size": 16,
        "num_workers": 0,
        "synthetic": {"num_classes": 3, "samples_per_class": 16, "image_size": 32},
    },
}
TINY_SPACE: dict[str, Any] = {
    "name": "tiny",
    "parameters": {
        "reinit_layers": {"type": "int", "low": 1, "high": 3},
        "lr_high": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
        "l2sp_layers": {"type": "choice", "values": [0, "all"]},
    },
}


def trial_rows(storage: str | Path, stage: str = "search") -> dict[str, list[dict[str, Any]]]:
    """Every result Ray stored for each trial of a stage: ``{trial_id: [row, ...]}``.

    Read from ``<storage>/<stage>/<trial_id>/result.json`` (one JSON result per line).
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(storage, stage).glob("*/result.json")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            rows[path.parent.name] = [json.loads(line) for line in lines]
    return rows


def trial_times(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One record per trial: its time (Ray's and the training loop's), end time, best val.

    Sorted by the wall-clock time of the trial's last report (the order trials ended in).
    """
    records = []
    for trial_id, results in rows.items():
        last = results[-1]
        vals = [r["val_accuracy"] for r in results if isinstance(r.get("val_accuracy"), float)]
        records.append(
            {
                "trial_id": trial_id,
                "epochs": len(results),
                "time_total_s": float(last.get("time_total_s", 0.0)),
                "epoch_time_s": sum(float(r.get("epoch_time_s", 0.0)) for r in results),
                "ended_at": float(last.get("reported_at") or last.get("timestamp") or 0.0),
                "best_val_accuracy": max(vals) if vals else None,
                "status": last.get("status"),
            }
        )
    return sorted(records, key=lambda r: r["ended_at"])


class StageTimer:
    """Wall time of the search stage and of publishing, by wrapping the two functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, label: str) -> Callable[[], None]:
        """Time every call of ``owner.name`` under ``label``; returns the undo."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


def timed_sweep(config: ExperimentConfig, **kwargs: Any) -> tuple[Any, float, dict[str, float]]:
    """``run_sweep(config, **kwargs)`` with its wall time and a per-stage breakdown."""
    from nonbinary_ft.tracking import SweepTracker
    from nonbinary_ft.tuning import orchestrate, results_writer

    timer = StageTimer()
    undo = [
        timer.wrap(orchestrate, "plan_sweep", "plan_s"),
        timer.wrap(orchestrate._Stage, "run", "stages_fit_s"),
        timer.wrap(results_writer, "publish_results", "publish_s"),
    ]
    for method in ("__init__", "open_parent", "log_inputs", "log_summary", "finish"):
        undo.append(timer.wrap(SweepTracker, method, "mlflow_parent_s"))
    try:
        started = time.perf_counter()
        result = orchestrate.run_sweep(config, **kwargs)
        wall = time.perf_counter() - started
    finally:
        for step in undo:
            step()
    return result, wall, timer.seconds


def start_ray(num_cpus: int) -> float:
    """Start a local Ray with ``num_cpus`` logical CPUs; returns the seconds it took."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=num_cpus, num_gpus=0, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - started


def overhead_summary(wall: float, times: list[float], concurrency: int) -> dict[str, Any]:
    """Overhead per trial and its ratio to the median trial, from per-trial times."""
    total = sum(times)
    per_trial = (wall * concurrency - total) / len(times)
    typical = statistics.median(times)
    return {
        "sum_trial_s": round(total, 3),
        "typical_trial_s": round(typical, 3),
        "overhead_per_trial_s": round(per_trial, 3),
        "ratio": round(per_trial / typical, 4),
    }


def steady_gap(records: list[dict[str, Any]]) -> float | None:
    """Median seconds between one trial's end and the next one's start, one trial at a time.

    The next trial's start is its end minus its ``time_total_s``: what Ray's loop spends
    between two trials once the worker runs (the first trial's start-up excluded).
    """
    gaps = [
        (later["ended_at"] - later["time_total_s"]) - earlier["ended_at"]
        for earlier, later in zip(records, records[1:], strict=False)
    ]
    return round(statistics.median(gaps), 3) if gaps else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="ray.init(num_cpus=...).")
    parser.add_argument("--concurrent", type=int, default=1, help="Trials at once.")
    parser.add_argument("--scheduler", choices=("asha", "none"), default="asha")
    parser.add_argument("--workdir", default=None, help="Default: a temporary folder.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="nbft-bench-overhead-"))
    config = ExperimentConfig.model_validate(
        {
            **TINY,
            "name": f"overhead-{int(time.time())}",
            "train": {"epochs": args.epochs, "warmup_epochs": 0, "device": "cpu"},
            "analysis": {"cache_dir": str(workdir / "cache"), "in_sweep": False},
            "sweep": {
                "space": TINY_SPACE,
                "search": {"algorithm": "tpe", "seed": 0},
                "scheduler": {"kind": args.scheduler},
                "budget": {"num_samples": args.trials},
                "resources": {"cpus": 1, "gpus": 0, "max_concurrent": args.concurrent},
                "storage": {"path": str(workdir / "runs")},
                "final": {"top_n": 0},
            },
        }
    )
    import ray

    ray_start = start_ray(args.cpus)
    try:
        result, wall, stages = timed_sweep(config)
    finally:
        ray.shutdown()
    records = trial_times(trial_rows(result.storage))
    ray_times = [r["time_total_s"] for r in records]
    loop_times = [r["epoch_time_s"] for r in records]
    by_ray = overhead_summary(wall, ray_times, args.concurrent)
    document = {
        "benchmark": "sweep_overhead",
        "trials": len(records),
        "counts": result.counts(),
        "epochs_per_trial": args.epochs,
        "scheduler": args.scheduler,
        "ray_num_cpus": args.cpus,
        "concurrency": args.concurrent,
        "ray_startup_s": round(ray_start, 3),
        "ray_startup_note": "ray.init before run_sweep; not part of the wall or the overhead",
        "wall_s": round(wall, 3),
        "wall_breakdown_s": {
            **{label: round(seconds, 3) for label, seconds in stages.items()},
            "other_s": round(wall - sum(stages.values()), 3),
        },
        # Inside Tuner.fit only: what Ray's loop adds per trial, set-up and snapshots included.
        "fit_overhead_per_trial_s": round(
            (stages.get("stages_fit_s", 0.0) * args.concurrent - sum(ray_times)) / len(records), 3
        ),
        "first_trial_s": round(records[0]["time_total_s"], 3) if records else None,
        "steady_gap_between_trials_s": steady_gap(records) if args.concurrent == 1 else None,
        "trial_time_source": "Ray time_total_s of each trial's last result",
        **by_ray,
        "goal_ratio": GOAL,
        "meets_goal": by_ray["ratio"] <= GOAL,
        "by_epoch_time_s": overhead_summary(wall, loop_times, args.concurrent),
        "trial_times": records,
        "storage": result.storage,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
