"""What the analysis pruning saves: one sweep, with and without it, on the transfer suite.

For the near and the far target of the controlled transfer suite
(:mod:`benchmarks.suite`), the same sweep (same space, search seed, budget
of trials, ASHA, one trial at a time, no final runs) runs twice on a local Ray:

- **unpruned**: ``analysis.in_sweep: false``, the whole space;
- **pruned**: ``analysis.in_sweep: true``, what ``nbft sweep`` does: stage 1's actor (own CPU,
  fresh feature cache, from-scratch baseline) runs beside the trials, and its evidence prunes
  the search from when it arrives (table 7's rows, with ``sweep.protect_top_fraction`` of
  strong trials overruling it). The actor's time, from the sweep's start to its final
  document, is added to this sweep's compute, counted before any trial.

The space (:data:`SPACE`) spans both regimes' narrowed spaces and the region each rules out:
re-initialised layers 1-3, L2-SP on none or all layers, 0-2 low-LR layers, log ranges of LRs.

For each: the best validation accuracy any trial reported, the compute (sum over trials of
Ray's ``time_total_s``, plus the analysis for the pruned sweep), and the compute the pruned
sweep needed to first reach the unpruned sweep's best (its trials walked in the order they
ended, starting from the analysis time), as a ratio of the unpruned sweep's compute. Source
pre-training (``build_suite``, cached under ``--cache-dir``) and Ray start-up are timed but
counted in neither.

    python -m benchmarks.sweep_pruning [--size small|full] [--trials 12] [--targets near,far]
        [--space FILE.yaml]   # another space (default: SPACE)
        [--set analysis.prune_min_rows=3]   # overrides of both targets' experiments

Prints one JSON document on stdout (logs go to stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.sweep_overhead import start_ray, timed_sweep, trial_rows, trial_times
from nonbinary_ft.config import ExperimentConfig, apply_overrides
from nonbinary_ft.search.policy import settings_of

SPACE: dict[str, Any] = {
    "name": "suite_wide",
    "parameters": {
        "reinit_layers": {"type": "int", "low": 1, "high": 3},
        "l2sp_layers": {"type": "choice", "values": [0, "all"]},
        "low_layers": {"type": "int", "low": 0, "high": 2},
        "lr_high": {"type": "float", "low": 0.01, "high": 0.6, "log": True},
        "lr_low": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
    },
}


def sweep_config(
    target: ExperimentConfig,
    name: str,
    workdir: Path,
    trials: int,
    seed: int,
    in_sweep: bool,
    space: dict[str, Any],
) -> ExperimentConfig:
    """The target's experiment with the benchmark's sweep section."""
    raw = target.model_dump(mode="json", exclude_none=True)
    raw["name"] = name
    raw["analysis"] = {**raw["analysis"], "in_sweep": in_sweep}
    # A fresh feature cache: the analysis's time includes extracting the features.
    raw["analysis"]["cache_dir"] = str(workdir / "features")
    raw["sweep"] = {
        "space": space,
        "search": {"algorithm": "tpe", "seed": seed},
        "budget": {"num_samples": trials},
        "resources": {"cpus": 1, "gpus": 0, "max_concurrent": 1},
        "storage": {"path": str(workdir / "runs")},
        "final": {"top_n": 0},
    }
    return ExperimentConfig.model_validate(raw)


def sweep_summary(result: Any, wall: float, extra_s: float = 0.0) -> dict[str, Any]:
    """Best val accuracy, compute, trials in end order with the compute spent by then."""
    rows = trial_rows(result.storage)
    records = trial_times(rows)
    spent = extra_s
    for record in records:
        spent += record["time_total_s"]
        record["compute_by_end_s"] = round(spent, 3)
    vals = [r["best_val_accuracy"] for r in records if r["best_val_accuracy"] is not None]
    return {
        "best_val_accuracy": max(vals) if vals else None,
        "compute_s": round(spent, 3),
        "wall_s": round(wall, 3),
        "counts": result.counts(),
        "epochs_run": sum(r["epochs"] for r in records),
        "decisions": len(result.decisions),
        "trials": [
            {k: r[k] for k in ("trial_id", "epochs", "time_total_s", "best_val_accuracy")}
            | {"compute_by_end_s": r["compute_by_end_s"]}
            | {"settings": settings_of(rows[r["trial_id"]][-1].get("config", {}))}
            for r in records
        ],
    }


def first_reach(summary: dict[str, Any], target: float | None) -> float | None:
    """Compute spent (analysis included) when a trial first reached ``target`` (None: never)."""
    if target is None:
        return None
    for trial in summary["trials"]:
        if trial["best_val_accuracy"] is not None and trial["best_val_accuracy"] >= target:
            return trial["compute_by_end_s"]
    return None


def run_target(
    name: str, target: ExperimentConfig, workdir: Path, trials: int, seed: int, space: dict
) -> dict[str, Any]:
    """Both sweeps on one target, and the comparison."""
    stamp = int(time.time())
    plain = sweep_config(target, f"{name}-unpruned-{stamp}", workdir, trials, seed, False, space)
    result, wall, _ = timed_sweep(plain)
    unpruned = sweep_summary(result, wall)

    pruned_config = sweep_config(
        target, f"{name}-pruned-{stamp}", workdir, trials, seed, True, space
    )
    started_at = time.time()
    result, wall, _ = timed_sweep(pruned_config)
    document = json.loads((result.published.folder / "analysis.json").read_text())
    if "missing" in document:
        raise RuntimeError(f"{name}: stage 1 gave no analysis ({document['missing']})")
    # The actor runs beside the trials from the sweep's start; its whole run is charged up
    # front, as if no trial could end before it.
    analysis_s = float(document["published_at"]) - started_at
    pruned = sweep_summary(result, wall, extra_s=analysis_s)
    pruned["analysis_s"] = round(analysis_s, 3)
    pruned["regime"] = document["regime"]["label"]
    pruned["rule"] = document["regime"].get("rule")
    pruned["recommended"] = document["recommendation"]["settings"]
    pruned["decisions_by_kind"] = {
        kind: sum(d.kind == kind for d in result.decisions)
        for kind in ("pruned_sample", "pruned_trial", "early_stopped")
    }

    reach = first_reach(pruned, unpruned["best_val_accuracy"])
    return {
        "unpruned": unpruned,
        "pruned": pruned,
        "pruned_compute_to_unpruned_best_s": reach,
        "ratio_to_unpruned_compute": round(reach / unpruned["compute_s"], 4)
        if reach is not None
        else None,
        "pruned_total_over_unpruned_total": round(pruned["compute_s"] / unpruned["compute_s"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "full"), default="small")
    parser.add_argument("--trials", type=int, default=12, help="Trials per sweep.")
    parser.add_argument("--seed", type=int, default=0, help="Search (TPE) seed.")
    parser.add_argument("--targets", default="near,far")
    parser.add_argument("--cpus", type=int, default=2, help="ray.init(num_cpus=...).")
    parser.add_argument("--space", default=None, help="A space YAML file; default: SPACE.")
    parser.add_argument(
        "--set", action="append", default=[], help="Override, e.g. analysis.prune_min_rows=3."
    )
    parser.add_argument("--cache-dir", default=".nbft-cache", help="Source checkpoint cache.")
    parser.add_argument("--workdir", default=None, help="Default: a temporary folder.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    from benchmarks.suite import build_suite

    space = yaml.safe_load(Path(args.space).read_text()) if args.space else SPACE
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="nbft-bench-pruning-"))
    started = time.perf_counter()
    # Absolute: Ray runs trials in their own folders, where a relative checkpoint path breaks.
    suite = build_suite(args.size, cache_dir=Path(args.cache_dir).resolve())
    suite_s = time.perf_counter() - started

    import ray

    ray_start = start_ray(args.cpus)
    targets: dict[str, Any] = {}
    try:
        for name in args.targets.split(","):
            target = apply_overrides(suite.target(name), args.set)
            targets[name] = run_target(name, target, workdir / name, args.trials, args.seed, space)
    finally:
        ray.shutdown()
    document = {
        "benchmark": "sweep_pruning",
        "suite_size": args.size,
        "trials_per_sweep": args.trials,
        "overrides": args.set,
        "search": {"algorithm": "tpe", "seed": args.seed, "scheduler": "asha"},
        "space": space,
        "compute_definition": "sum of Ray time_total_s over the sweep's trials; pruned: plus "
        "the analysis actor's run (features, probe, scores, from-scratch baseline), counted "
        "before the first trial",
        "pruning": "stage 1's analysis actor (analysis.in_sweep: true)",
        "suite_build_s": round(suite_s, 3),
        "suite_cache_hit": suite.source.cache_hit,
        "ray_startup_s": round(ray_start, 3),
        "targets": targets,
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
