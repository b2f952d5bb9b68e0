"""``nbft bench collect``: train every grid point of one task on Ray, and its stage-1 evidence.

Each point runs through the project's own trial code (the sweep's Ray Tune trainable): every
epoch records validation accuracy, losses and its wall time, the last one test accuracy too.
Every point trains with seed 0; then the best :data:`REPEAT_FRACTION` of them by seed 0
train again with seeds 1 to :data:`SEEDS` - 1, so that the table knows how far apart two
runs of the same settings land. A finished run is written at once to
``<out>/points/<i>.json`` (``<i>-s<seed>.json`` for the repeats) and the task's evidence to
``<out>/evidence.json``: a killed collection, run again, skips what is there and trains only
the rest. When every run is in, the table's Parquet files (:mod:`nonbinary_ft.history.table`)
are written next to them.

The evidence is measured as the sweep's stage 1 would pay for it, in a feature cache of the
collection's own (so that a cache hit never passes for a fast analysis): features, probe,
scores, then the from-scratch run at ``analysis.scratch``'s budget, every epoch recorded.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nonbinary_ft.config import ExperimentConfig, load_config
from nonbinary_ft.config.space import load_space
from nonbinary_ft.history.table import TableError, TaskEvidence, settings_key, write_table
from nonbinary_ft.results.io import jsonable, write_json
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.search.grid import grid_points
from nonbinary_ft.search.sampling import SpaceSource, constrain_space

__all__ = [
    "POINT_KEY",
    "SEEDS",
    "REPEAT_FRACTION",
    "grid_of",
    "repeat_points",
    "measure_evidence",
    "collect_task",
]

logger = logging.getLogger(__name__)

POINT_KEY = "replay_point"
"""The key a collection trial's config carries besides its settings: its point's index."""
SEEDS = 3
"""Seeds of the repeated points (seed 0 included)."""
REPEAT_FRACTION = 0.1
"""The share of the points, best by seed 0, trained with every seed."""


def repeat_points(final_val: Mapping[int, float], fraction: float = REPEAT_FRACTION) -> list[int]:
    """The points to train with more seeds: the best ``fraction`` by seed 0, at least one
    (ties go to the earlier point, so that the cost is known in advance)."""
    ranked = sorted(final_val, key=lambda point: (-final_val[point], point))
    count = max(1, math.ceil(fraction * len(ranked))) if ranked else 0
    return sorted(ranked[:count])


def grid_of(config: ExperimentConfig, grid_file: str | Path, num_layers: int) -> list[dict]:
    """The distinct points of a grid file for the task's model (each trained once).

    Points that train the same way (``alpha`` without L2-SP layers, ...) are one point.

    Raises:
        ConfigError: the grid file is missing or invalid, or has no point valid for the model.
    """
    where = SpaceSource(load_space(grid_file), str(grid_file), "")
    capped = constrain_space(where, num_layers, config.settings, config.model.name)
    points, _ = grid_points([(where, capped)], num_layers, config.settings)
    distinct: dict[str, dict] = {}
    for point in points:
        distinct.setdefault(settings_key(point), point)
    return list(distinct.values())


def measure_evidence(config: ExperimentConfig, workdir: Path) -> TaskEvidence:
    """Stage 1 on the task, each part timed: features, probe, scores, the scratch curve."""
    from nonbinary_ft.analysis import analyse, extract_features
    from nonbinary_ft.analysis.probe import fixed_feature_accuracy
    from nonbinary_ft.analysis.runner import transfer_scores
    from nonbinary_ft.analysis.scratch import scratch_baseline

    config = config.model_copy(
        update={"analysis": config.analysis.model_copy(update={"cache_dir": workdir / "cache"})}
    )
    clock = time.perf_counter()
    features = extract_features(config, progress=False)
    features_s, clock = time.perf_counter() - clock, time.perf_counter()
    fixed_feature_accuracy(features, config.analysis.probe)
    probe_s, clock = time.perf_counter() - clock, time.perf_counter()
    transfer_scores(features, config)
    scores_s = time.perf_counter() - clock
    scratch = scratch_baseline(config, workdir / "scratch")
    report = analyse(config, workdir, scratch_result=scratch, features=features)
    curve = scratch.curve
    return TaskEvidence(
        document=jsonable(report.to_dict()),
        features_s=features_s,
        probe_s=probe_s,
        scores_s=scores_s,
        scratch_val=tuple(r.val_accuracy or 0.0 for r in curve),
        scratch_test=tuple(r.test_accuracy or 0.0 for r in curve),
        scratch_epoch_s=tuple(r.epoch_time_s or 0.0 for r in curve),
    )


def _load_evidence(path: Path) -> TaskEvidence:
    raw = json.loads(path.read_text())
    return TaskEvidence(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _done_runs(folder: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """The runs on disk: (point, seed) -> its settings and epochs."""
    done = {}
    for path in folder.glob("*.json"):
        point, _, seed = path.stem.partition("-s")
        done[int(point), int(seed or 0)] = json.loads(path.read_text())
    return done


def _final_val(run: Mapping[str, Any]) -> float:
    """A run's last validation accuracy (0 for a run without epochs or a diverged one)."""
    history = run.get("history") or []
    value = history[-1].get("val_accuracy") if history else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _run_points(
    config: ExperimentConfig,
    runs: Mapping[tuple[int, int], dict[str, Any]],
    folder: Path,
    workers: int,
    workdir: Path,
) -> None:
    """Train ``runs`` ((point, seed) -> settings) on Ray, ``workers`` at a time, writing each
    as it finishes."""
    import ray
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

    from nonbinary_ft.replay.recorder import PointRecorder
    from nonbinary_ft.tuning.final import SEED_KEY
    from nonbinary_ft.tuning.searcher import GridSearcher
    from nonbinary_ft.tuning.stages import connect_ray, fit_quietly
    from nonbinary_ft.tuning.trainable import create_trainable

    resources = {"CPU": config.sweep.resources.cpus, "GPU": config.sweep.resources.gpus}
    configs = [
        {**settings, POINT_KEY: point, SEED_KEY: config.train.seed + seed}
        for (point, seed), settings in sorted(runs.items())
    ]
    # A fresh experiment each time: what finished is on disk already, the rest starts over.
    shutil.rmtree(workdir / "ray", ignore_errors=True)
    owns_ray = connect_ray()
    try:
        tuner = Tuner(
            create_trainable(config, resources),
            tune_config=TuneConfig(
                search_alg=GridSearcher(configs),
                num_samples=len(configs),
                max_concurrent_trials=workers,
                reuse_actors=True,
            ),
            run_config=RunConfig(
                name="collect",
                storage_path=str((workdir / "ray").resolve()),
                verbose=0,
                failure_config=FailureConfig(max_failures=1),
                # A point needs its latest checkpoint only while it trains (to survive a dead
                # worker); Ray keeps every epoch's otherwise, gigabytes for a Lite0 grid.
                checkpoint_config=CheckpointConfig(num_to_keep=1),
                callbacks=[PointRecorder(folder, POINT_KEY, len(configs), config.train.seed)],
            ),
        )
        fit_quietly(tuner)
    finally:
        if owns_ray:
            ray.shutdown()
    # What finished is in the points folder; Ray's copies of it are not needed any more.
    shutil.rmtree(workdir / "ray", ignore_errors=True)


def _write_finished(
    folder: Path,
    config: ExperimentConfig,
    num_layers: int,
    grid: list[dict],
    done: Mapping[tuple[int, int], dict[str, Any]],
    task_text: str,
) -> None:
    """The table's Parquet files, once every run is in."""
    finished = [
        (grid[i], [EpochRecord.from_report(r) for r in done[i, 0]["history"]])
        for i in range(len(grid))
    ]
    repeats = [
        (point, seed, [EpochRecord.from_report(r) for r in run["history"]])
        for (point, seed), run in sorted(done.items())
        if seed > 0
    ]
    evidence_file = folder / "evidence.json"
    evidence = _load_evidence(evidence_file) if evidence_file.is_file() else None
    write_table(
        folder, config.name, num_layers, config.train.epochs, finished, evidence, task_text,
        repeats, validation_size(config),
    )  # fmt: skip


def _train_missing(
    config: ExperimentConfig,
    wanted: Mapping[tuple[int, int], dict[str, Any]],
    folder: Path,
    workers: int,
    say: Callable[[str], None],
) -> dict[tuple[int, int], dict[str, Any]]:
    """Train the runs of ``wanted`` not on disk yet; every run on disk, after.

    Raises:
        TableError: runs that failed to train (the others are kept: run it again).
    """
    points_dir = folder / "points"
    done = _done_runs(points_dir)
    todo = {run: settings for run, settings in wanted.items() if run not in done}
    say(f"{config.name}: {len(wanted)} runs, {len(wanted) - len(todo)} done, {len(todo)} to train")
    if todo:
        _run_points(config, todo, points_dir, workers, folder / "work")
        done = _done_runs(points_dir)
    missing = sorted(run for run in wanted if run not in done)
    if missing:
        raise TableError(
            f"{folder}: {len(missing)} of {len(wanted)} runs failed to train ((point, seed) "
            f"{missing[:5]}...); run the same command again to retry them"
        )
    return done


def validation_size(config: ExperimentConfig) -> int:
    """How many images the task's validation split holds."""
    from nonbinary_ft.data.build import read_samples

    return len(read_samples(config.data).val)


def collect_task(
    task_file: str | Path,
    grid_file: str | Path,
    out: str | Path,
    workers: int | None = None,
    evidence: bool = True,
    progress: Callable[[str], None] | None = None,
    seeds: int = SEEDS,
) -> Path:
    """Collect one task's table (resumes where a killed run stopped).

    Args:
        task_file: the task's sweep file (model, data, training recipe, base settings).
        grid_file: a search-space file of grids: the points to train.
        out: the table's folder.
        workers: trials at a time; default ``sweep.resources.max_concurrent`` or 1.
        evidence: also measure the stage-1 evidence.
        progress: called with a line per finished step.
        seeds: seeds of the best points (1: every point once).

    Returns:
        The table's folder.

    Raises:
        ConfigError: a bad task or grid file (before anything is trained).
        TableError: points that failed to train (the others are kept: run it again).
    """
    from nonbinary_ft.models.layers import count_layers

    config = load_config(task_file)
    num_layers = count_layers(config.model.name)
    grid = grid_of(config, grid_file, num_layers)
    folder = Path(out)
    (folder / "points").mkdir(parents=True, exist_ok=True)
    say = progress or logger.info
    evidence_file = folder / "evidence.json"
    if evidence and not evidence_file.is_file():
        measured = measure_evidence(config, folder / "work")
        write_json(evidence_file, measured)
        say(
            f"{config.name}: evidence in ({measured.cheap_s:.1f} s cheap, "
            f"{measured.scratch_s():.1f} s from scratch)"
        )
    workers = workers or config.sweep.resources.max_concurrent or 1
    first = {(i, 0): point for i, point in enumerate(grid)}
    done = _train_missing(config, first, folder, workers, say)
    best = repeat_points({i: _final_val(done[i, 0]) for i in range(len(grid))})
    repeats = {(i, seed): grid[i] for i in best for seed in range(1, seeds)}
    done = _train_missing(config, {**first, **repeats}, folder, workers, say)
    _write_finished(folder, config, num_layers, grid, done, Path(task_file).read_text())
    say(f"{config.name}: table written to {folder}")
    return folder
