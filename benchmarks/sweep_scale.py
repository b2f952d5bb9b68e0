"""How a sweep's orchestration cost grows with its size: 100, 300, 1,000 trials (issue 21).

Each size is a real ``run_sweep`` in a fresh process (its own loopback Ray cluster: a head
and two worker nodes of several logical CPUs), with everything a real sweep does: stage 1's
analysis actor, the default search (``zero_shot_model``: the shipped prior's best settings for the
model, then TPE) and scheduler (RUSH), an MLflow child run per trial with its dataset inputs and
per-epoch metrics, the decision log, stage 3's seeded runs and the report. Only the training
is replaced: every trial reports a recorded replay table's epochs
(``TrainableOptions.rehearse_table``), so that a trial costs nothing but orchestration.

Measured per size, in the sweep's own process (the driver):

- ``overhead_s_per_trial``: (wall x concurrency - the trials' own time) / trials, the
  slot-seconds not spent inside a trial (the trials' time is the recorded reporting, ~0);
- ``driver_cpu_s_per_trial``: the driver's user + system CPU over the sweep, per trial;
- ``driver_peak_rss_mb``: the driver's peak resident memory;
- ``suggest_ms``: the searcher's mean time per suggestion (``PruningSearcher.suggest``);
- ``scheduler_ms``: the scheduler's mean time per result;
- ``checkpoint_s``: the total time of Ray's experiment checkpoints (``TuneController.checkpoint``);
- ``mlflow_s_per_trial``: the MLflow callback's time (child runs, inputs, metrics), per trial;
- ``results_mb``: the run folder's results files; ``report_s``, ``report_html_mb`` and
  ``report_mb`` (with its plots): the report written again from the run folder;
- ``resume_s``: ``run_sweep(..., resume=True)`` on the finished sweep;
- ``checkpoints_kept``: trial checkpoints left in the search stage's storage (the pruner
  keeps those the last snapshots name);
- ``mlflow_ui_s``, ``mlflow_ui_children_s``: MLflow's own UI on a real ``mlflow server``
  over the sweep's database, in headless Chromium: until the runs table shows the sweep's
  parent run, then until its unfolded child runs are listed (:mod:`benchmarks.mlflow_ui`;
  null without Chromium).

From the smallest to the largest size, ``growth`` gives each per-trial figure's exponent
(``log(cost_large / cost_small) / log(n_large / n_small)`` of the totals; 1 is linear).

    python -m benchmarks.sweep_scale [--sizes 100 300 1000] [--json] [--out DIR]

Prints one JSON document on stdout (logs go to stderr) and writes ``sweep_scale.png`` (each
cost against the trial count) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "nonbinary_ft" / "history" / "prior" / "suite-near"
WORKER_CPUS = 4
CONCURRENT = 8

logger = logging.getLogger("benchmarks.sweep_scale")


def sweep_document(
    trials: int, workdir: Path, epochs: int, cpus_per_trial: float = 1.0
) -> dict[str, Any]:
    """The sweep of ``trials`` trials: the tiny experiment, default search and scheduler."""
    from tests.tiny import tiny_document

    return tiny_document(
        name=f"scale-{trials}",
        train={"epochs": epochs},
        analysis={"cache_dir": str(workdir / "cache"), "scratch": {"epochs": 1}},
        sweep={
            "space": str(REPO / "search_spaces" / "paper_full.yaml"),
            "budget": {"num_samples": trials, "epoch_time_s": 1.0},
            "resources": {"cpus": cpus_per_trial, "gpus": 0, "max_concurrent": CONCURRENT},
            "final": {"top_n": 1, "seeds": [0, 1]},
            "storage": {"path": str(workdir / "runs")},
        },
    )


class Timers:
    """Wall seconds and calls of wrapped methods, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: type, method: str, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, method)
        timers = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.seconds[name] += time.perf_counter() - started
                timers.calls[name] += 1

        setattr(owner, method, timed)


def _instrument() -> Timers:
    from ray.tune.execution.tune_controller import TuneController

    from nonbinary_ft.tuning.callbacks import MlflowTrialCallback
    from nonbinary_ft.tuning.scheduler import RushScheduler
    from nonbinary_ft.tuning.searcher import PruningSearcher

    timers = Timers()
    timers.wrap(PruningSearcher, "suggest", "suggest")
    timers.wrap(RushScheduler, "on_trial_result", "scheduler")
    timers.wrap(TuneController, "checkpoint", "checkpoint")
    for hook in ("on_trial_start", "on_trial_result", "on_trial_complete", "on_experiment_end"):
        timers.wrap(MlflowTrialCallback, hook, "mlflow")
    return timers


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_one(trials: int, workdir: Path) -> dict[str, Any]:
    """One sweep of ``trials`` trials in this process (the driver), measured."""
    import ray
    from ray.cluster_utils import Cluster

    from nonbinary_ft.config import ExperimentConfig
    from nonbinary_ft.history.table import read_table
    from nonbinary_ft.reporting import write_report
    from nonbinary_ft.results import load_results
    from nonbinary_ft.tuning import run_sweep
    from nonbinary_ft.tuning.trainable import TrainableOptions

    table = read_table(TABLE)
    config = ExperimentConfig.model_validate(sweep_document(trials, workdir, table.epochs))
    options = TrainableOptions(rehearse_table=str(TABLE))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=WORKER_CPUS)
    ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False)
    cluster.wait_for_nodes()
    timers = _instrument()
    try:
        cpu, started = _cpu_s(), time.perf_counter()
        run = run_sweep(config, options=options)
        wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
        started = time.perf_counter()
        run_sweep(config, resume=True, options=options)
        resume_s = time.perf_counter() - started
    finally:
        ray.shutdown()
        cluster.shutdown()
    folder = Path(run.storage)
    results = load_results(folder)
    started = time.perf_counter()
    paths = write_report(results, workdir / "report")
    report_s = time.perf_counter() - started
    trial_s = sum(float(t.time_s or 0.0) for t in run.trials)
    searched = len(run.trials)
    results_bytes = sum(p.stat().st_size for p in folder.glob("*.json*") if p.is_file())
    ui = _mlflow_ui(run)
    return {
        "trials": searched,
        "wall_s": wall,
        "overhead_s_per_trial": (wall * CONCURRENT - trial_s) / searched,
        "driver_cpu_s_per_trial": cpu / searched,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "suggest_ms": 1000 * timers.seconds["suggest"] / max(timers.calls["suggest"], 1),
        "scheduler_ms": 1000 * timers.seconds["scheduler"] / max(timers.calls["scheduler"], 1),
        "checkpoint_s": timers.seconds["checkpoint"],
        "checkpoints": timers.calls["checkpoint"],
        "mlflow_s_per_trial": timers.seconds["mlflow"] / searched,
        "results_mb": results_bytes / 2**20,
        "report_s": report_s,
        "report_html_mb": paths.html.stat().st_size / 2**20,
        "report_mb": sum(p.stat().st_size for p in (paths.html, *paths.images)) / 2**20,
        "resume_s": resume_s,
        "checkpoints_kept": len(list((folder / "search").glob("*/checkpoint_*"))),
        "mlflow_ui_s": ui.get("runs_table_s"),
        "mlflow_ui_children_s": ui.get("children_s"),
    }


def _mlflow_ui(run: Any) -> dict[str, Any]:
    """MLflow's UI timed on the sweep's database (nothing without Chromium)."""
    from benchmarks.mlflow_ui import time_mlflow_ui

    try:
        return time_mlflow_ui(Path(run.tracking_uri.removeprefix("sqlite:///")), run.name)
    except RuntimeError as error:
        logger.warning("MLflow's UI not timed: %s", error)
        return {}


GROWING = [
    "overhead_s_per_trial", "driver_cpu_s_per_trial", "suggest_ms", "scheduler_ms",
    "mlflow_s_per_trial",
]  # fmt: skip
TOTALS = [
    "driver_peak_rss_mb", "checkpoint_s", "results_mb", "report_s", "resume_s", "mlflow_ui_s",
]  # fmt: skip


def growth(by_trials: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each figure's exponent in the trial count, smallest to largest size (1: linear).

    Per-trial figures are made totals first (x trials), so a flat per-trial cost gives 1.
    """
    sizes = sorted(by_trials, key=int)
    small, large = by_trials[sizes[0]], by_trials[sizes[-1]]
    ratio = math.log(large["trials"] / small["trials"])
    exponents = {}
    for name in GROWING + TOTALS:
        low, high = small[name], large[name]
        if low is None or high is None:
            continue
        if name in GROWING:
            low, high = low * small["trials"], high * large["trials"]
        if low > 0 and high > 0:
            exponents[name] = round(math.log(high / low) / ratio, 3)
    return exponents


def plot(by_trials: dict[str, dict[str, Any]], path: Path) -> None:
    """One panel per figure, against the trial count (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = GROWING + TOTALS
    sizes = sorted(by_trials, key=int)
    figure, axes = plt.subplots(3, 4, figsize=(15, 9.5))
    for axis, name in zip(axes.flat, names, strict=False):
        axis.plot([int(s) for s in sizes], [by_trials[s][name] or math.nan for s in sizes], "o-")
        axis.set_xscale("log")
        axis.set_ylim(bottom=0)  # from zero: a flat cost should look flat
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("trials")
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    figure.suptitle("Sweep orchestration cost against sweep size (recorded trials)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    """Run each size in its own process, then print the JSON and write the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--out", type=Path, default=Path("runs") / "sweep_scale")
    parser.add_argument("--json", action="store_true", help="Print only the JSON document.")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.workdir)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    by_trials: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nbft-scale-") as tmp:
        for size in args.sizes:
            workdir = Path(tmp) / str(size)
            command = [sys.executable, "-m", "benchmarks.sweep_scale", "--one", str(size),
                       "--workdir", str(workdir)]  # fmt: skip
            logger.warning("sweep of %d trials ...", size)
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"the {size}-trial sweep failed:\n{done.stderr[-4000:]}")
            by_trials[str(size)] = json.loads(done.stdout.strip().splitlines()[-1])
    document = {"by_trials": by_trials, "concurrent": CONCURRENT, "table": TABLE.name}
    if len(by_trials) > 1:
        document["growth"] = growth(by_trials)
        plot(by_trials, args.out / "sweep_scale.png")
        document["plot"] = str(args.out / "sweep_scale.png")
    (args.out / "sweep_scale.json").write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2) if args.json else yaml.safe_dump(document))


if __name__ == "__main__":
    main()
