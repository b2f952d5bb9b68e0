"""The controlled transfer suite end to end: build it, analyse both targets, compare regimes.

For the near and the far target: the fixed-feature and from-scratch accuracies (validation,
and test for reference), the gap, the regime the analysis predicts, the normalised Fisher
score and EMD similarity, and the accuracies of the two regimes' recommended settings run
with the same budget and seeds (``compare_regimes``). Not a timed test: it prints what the
suite measures, with how long each stage took.

    python -m benchmarks.transfer_suite [--size full] [--seeds 0,1,2] [--cache-dir .nbft-cache]

``--data-seed`` rebuilds the suite from another generator seed (a new source and new
targets) to check that the construction, not one draw of it, carries the result.
``--lr-sweep 0.01,0.03,0.1,0.3,0.6`` adds the paper's figure 1 for both targets: the binary
default (head only, one LR, plain L2) fine-tuned at each single LR, mean over the seeds.
Prints one JSON document on stdout (logs go to stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import suite as suites
from nonbinary_ft.analysis import AnalysisReport, analyse
from nonbinary_ft.config import ExperimentConfig, with_settings
from nonbinary_ft.training.trial import run_trial


def _target_summary(report: AnalysisReport, comparison: suites.RegimeComparison) -> dict:
    evidence, regime = report.evidence, report.regime
    predicted = regime.label
    opposite = "fits_poorly" if predicted == "fits_well" else "fits_well"
    runs = comparison.to_dict()["runs"]
    return {
        "fixed_feature_val": evidence.fixed_accuracy,
        "from_scratch_val": evidence.scratch_accuracy,
        "gap": evidence.gap,
        "fixed_feature_test": evidence.fixed_test_accuracy,
        "from_scratch_test": evidence.scratch_test_accuracy,
        "chance": evidence.chance_accuracy,
        "fisher": evidence.fisher,
        "emd_similarity": evidence.emd,
        "predicted_regime": predicted,
        "rule": regime.rule,
        "disagreements": list(regime.disagreements),
        "regimes": runs,
        "predicted_minus_opposite_test": (
            runs[predicted]["mean_test"] - runs[opposite]["mean_test"]
            if predicted in runs and opposite in runs
            else None
        ),
        "predicted_minus_opposite_val": (
            runs[predicted]["mean_val"] - runs[opposite]["mean_val"]
            if predicted in runs and opposite in runs
            else None
        ),
    }


def single_lr_sweep(
    config: ExperimentConfig, lrs: tuple[float, ...], seeds: tuple[int, ...], workdir: Path
) -> dict[str, dict[str, float]]:
    """Mean val and test accuracy of the binary default at each single LR (figure 1)."""
    curve = {}
    for lr in lrs:
        trial = with_settings(
            config, {"reinit_layers": 1, "lr_high": lr, "low_layers": 0, "l2sp_layers": 0}
        )
        vals, tests = [], []
        for seed in seeds:
            seeded = trial.model_copy(
                update={"train": trial.train.model_copy(update={"seed": seed})}
            )
            result = run_trial(seeded, lambda metrics, path: None, workdir)
            vals.append(result.history[-1].val_accuracy or 0.0)
            tests.append(float(result.test_accuracy or 0.0))
        curve[f"{lr:g}"] = {
            "mean_val": statistics.fmean(vals),
            "mean_test": statistics.fmean(tests),
        }
    return curve


def run(
    size: str,
    cache_dir: Path,
    seeds: tuple[int, ...],
    data_seed: int | None,
    lrs: tuple[float, ...] = (),
) -> dict:
    """Build the suite, analyse both targets, compare the regimes; return the JSON document."""
    started = time.perf_counter()
    suite = suites.build_suite(size, cache_dir, seed=data_seed)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "suite": suite.to_dict(),
        "build_s": time.perf_counter() - started,
        "targets": {},
    }
    with tempfile.TemporaryDirectory(prefix="nbft-transfer-suite-") as tmp:
        for name in ("near", "far"):
            config = suite.target(name)
            started = time.perf_counter()
            report = analyse(config, Path(tmp) / name)
            analysis_s = time.perf_counter() - started
            started = time.perf_counter()
            comparison = suites.compare_regimes(config, seeds, report.num_layers)
            summary = _target_summary(report, comparison)
            summary.update(
                expected_regime=suites.EXPECTED_REGIMES[name],
                analysis_s=analysis_s,
                comparison_s=time.perf_counter() - started,
            )
            if lrs:
                summary["single_lr_sweep"] = single_lr_sweep(config, lrs, seeds, Path(tmp) / "lr")
            result["targets"][name] = summary
    result["all_regimes_right"] = all(
        target["predicted_regime"] == target["expected_regime"]
        for target in result["targets"].values()
    )
    result["predicted_regime_wins_everywhere"] = all(
        (target["predicted_minus_opposite_test"] or 0) > 0 for target in result["targets"].values()
    )
    return result


def main() -> None:
    """Parse the arguments, run, print the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(suites.SUITE_SPECS), default="full")
    parser.add_argument("--cache-dir", type=Path, default=Path(".nbft-cache"))
    parser.add_argument("--seeds", default="0,1,2", help="Training seeds of the comparison.")
    parser.add_argument("--data-seed", type=int, default=None, help="Another suite draw.")
    parser.add_argument("--lr-sweep", default="", help="Single LRs for figure 1, e.g. 0.03,0.3.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny models).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(args.threads)
    seeds = tuple(int(seed) for seed in args.seeds.split(","))
    lrs = tuple(float(lr) for lr in args.lr_sweep.split(",") if lr)
    print(json.dumps(run(args.size, args.cache_dir, seeds, args.data_seed, lrs), indent=2))


if __name__ == "__main__":
    main()
