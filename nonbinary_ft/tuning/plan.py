"""The sweep plan: everything resolved and checked before Ray starts (and what --dry-run prints).

:func:`plan_sweep` reads the space(s), counts the model's layers, caps the space to them,
enumerates the grid, resolves storage and MLflow locations and estimates the cost. Every
problem of the sweep file surfaces here as a :class:`ConfigError`, so a bad file fails in
seconds, naming the file and the key, rather than after a cluster has started.

Cost estimate (documented for --dry-run). With ``E`` epochs per trial, ``t`` the sweep file's
``budget.epoch_time_s`` (seconds of one epoch of one trial on its resources) and ``g`` GPUs per
trial: search epochs = trials x expected epochs per trial, where the expectation is ``E`` with
no scheduler and, under ASHA (grace period ``q``, reduction factor ``r``), about
``q + sum_i (rung_{i+1} - rung_i) / r^(i+1)`` with rungs at ``q r^i`` below ``E`` (a fraction
``1/r`` of the trials passes each rung); final epochs = top_n x seeds x E; the binary
baseline's re-runs, at most (one per baseline learning rate) x seeds x E (one setting when
the search tried a binary one, none when a top setting is binary); the from-scratch run of
stage 1 = ``analysis.scratch.epochs`` (when it is trained in the sweep and not cached from an
earlier run). Trial-hours = all those epochs x t / 3600, an upper bound, and GPU-hours =
trial-hours x g. Pruning by the analysis only lowers it; ``budget.max_wall_time_s`` caps the
search stage's wall time, not its GPU-hours.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from nonbinary_ft.config import ExperimentConfig, SweepConfig
from nonbinary_ft.config.space import Grid, SearchSpace, dump_space
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.search.algorithms import analysis_with_search, scheduler_kind
from nonbinary_ft.search.grid import grid_points
from nonbinary_ft.search.sampling import SpaceSource, constrain_space, load_sweep_spaces
from nonbinary_ft.tuning.final import BASELINE_LR_FACTORS

__all__ = [
    "DEFAULT_NUM_SAMPLES",
    "CostEstimate",
    "StorageLocation",
    "SweepPlan",
    "StageOneTiming",
    "plan_sweep",
    "estimate_cost",
    "asha_expected_epochs",
]

StageOneTiming = Literal["with_search", "after_search", "off"]
"""When a sweep runs stage 1: from the search's start, after it, or not at all."""

logger = logging.getLogger(__name__)

DEFAULT_NUM_SAMPLES = 16


@dataclass(frozen=True)
class StorageLocation:
    """Where Ray Tune writes the sweep (what --resume restores from).

    Attributes:
        root: ``<storage.path>/<name>`` as a URI or an absolute local path.
        local_dir: the local run folder (MLflow's default database lives here).
        endpoint_url: the S3 endpoint for s3:// roots.
        region: the S3 region.
    """

    root: str
    local_dir: Path
    endpoint_url: str | None = None
    region: str = "us-east-1"

    @property
    def is_s3(self) -> bool:
        """Whether the sweep is stored on S3."""
        return self.root.startswith("s3://")

    def experiment_uri(self, stage: str) -> str:
        """The URI of one stage's Ray Tune experiment ('search' or 'final')."""
        return f"{self.root}/{stage}"

    def ray_storage(self) -> tuple[str, Any]:
        """``(storage_path, storage_filesystem)`` for ``ray.tune.RunConfig``.

        On S3 the filesystem is built with the explicit endpoint and the path loses its scheme
        (Ray expects a prefix-stripped path with a custom filesystem).
        """
        if not self.is_s3:
            return self.root, None
        import pyarrow.fs

        endpoint = self.endpoint_url or ""
        scheme, _, host = endpoint.rpartition("://")
        # pyarrow takes the transport apart from the host (it defaults to https).
        filesystem = pyarrow.fs.S3FileSystem(
            endpoint_override=host,
            scheme=scheme or "https",
            region=self.region,
            # An endpoint that does not answer fails in seconds rather than retrying on.
            connect_timeout=S3_CONNECT_TIMEOUT_S,
            retry_strategy=pyarrow.fs.AwsStandardS3RetryStrategy(max_attempts=3),
        )
        return self.root.removeprefix("s3://"), filesystem

    @property
    def mlflow_artifacts(self) -> str:
        """Where a sweep with the default (local) tracking store keeps MLflow's artifacts:
        beside Ray's storage on S3, else in the local run folder."""
        if self.is_s3:
            return f"{self.root}/mlartifacts"
        return (self.local_dir / "mlartifacts").as_uri()

    @classmethod
    def from_config(cls, config: ExperimentConfig) -> StorageLocation:
        """Resolve ``sweep.storage`` for the experiment ``config.name``."""
        storage = config.sweep.storage
        path = storage.path.removeprefix("file://")
        if path.startswith("s3://"):
            return cls(
                f"{path.rstrip('/')}/{config.name}",
                (Path("runs") / config.name).resolve(),
                storage.endpoint_url,
                storage.region,
            )
        local = (Path(path).expanduser() / config.name).resolve()
        return cls(str(local), local)


S3_CONNECT_TIMEOUT_S = 10.0
"""Seconds to connect to an S3 endpoint before a request fails."""


@dataclass(frozen=True)
class CostEstimate:
    """The --dry-run estimate (see the module docstring for the formula)."""

    search_trials: int
    expected_epochs_per_trial: float
    final_trials: int
    baseline_trials_max: int
    scratch_epochs: int
    epochs_per_trial: int
    epoch_time_s: float
    gpus_per_trial: float
    trial_hours: float
    gpu_hours: float
    max_wall_time_s: float | None


@dataclass(frozen=True)
class SweepPlan:
    """A sweep, resolved and checked; nothing started.

    Attributes:
        name: the experiment name.
        source: the sweep file.
        model_name: the backbone.
        num_layers: its layer count L.
        algorithm: 'tpe', 'random' or 'grid'.
        spaces: the spaces, capped to the model.
        grid: the grid points (algorithm 'grid'), else None.
        dropped_grid_points: grid combinations dropped (invalid for L, or repeated).
        num_trials: trials of the search stage (at most, when the policy prunes samples).
        resources: per trial, as Ray names them ({'CPU': ..., 'GPU': ...}).
        storage: where Ray writes.
        tracking_uri: MLflow tracking URI.
        mlflow_experiment: MLflow experiment name.
        cost: the estimate.
        stage_one: when stage 1's analysis runs: 'with_search' (from the start),
            'after_search' (beside stage 3) or 'off' (``analysis.in_sweep`` is false).
    """

    name: str
    source: str | None
    model_name: str
    num_layers: int
    algorithm: str
    spaces: tuple[SearchSpace, ...]
    grid: tuple[dict[str, Any], ...] | None
    dropped_grid_points: int
    num_trials: int
    resources: dict[str, float]
    storage: StorageLocation
    tracking_uri: str
    mlflow_experiment: str
    cost: CostEstimate
    stage_one: StageOneTiming
    notes: tuple[str, ...] = field(default=())

    @property
    def sweep_key(self) -> str:
        """The sweep's identity: its search experiment's URI (stable across --resume)."""
        return self.storage.experiment_uri("search")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``nbft sweep --dry-run --json`` prints)."""
        return {
            "name": self.name,
            "source": self.source,
            "model": self.model_name,
            "num_layers": self.num_layers,
            "algorithm": self.algorithm,
            "spaces": [space.model_dump(mode="json") for space in self.spaces],
            "num_trials": self.num_trials,
            "grid_points": list(self.grid) if self.grid is not None else None,
            "dropped_grid_points": self.dropped_grid_points,
            "resources_per_trial": self.resources,
            "storage": self.storage.root,
            "mlflow": {"tracking_uri": self.tracking_uri, "experiment": self.mlflow_experiment},
            "estimate": asdict(self.cost),
            "stage_one": self.stage_one,
            "notes": list(self.notes),
        }

    def spaces_yaml(self) -> str:
        """The resolved spaces as YAML, one document per space."""
        return "---\n".join(dump_space(space) for space in self.spaces)


def asha_expected_epochs(epochs: int, grace_period: int, reduction_factor: float) -> float:
    """The expected epochs of one trial under ASHA (see the module docstring).

    Args:
        epochs: the full training length (ASHA's max_t).
        grace_period: epochs before the first rung.
        reduction_factor: about 1/reduction_factor of the trials pass each rung.
    """
    rungs = []
    rung = float(grace_period)
    while rung < epochs:
        rungs.append(rung)
        rung *= reduction_factor
    if not rungs:
        return float(epochs)
    expected = rungs[0]
    bounds = [*rungs[1:], float(epochs)]
    for index, (low, high) in enumerate(zip(rungs, bounds, strict=True)):
        expected += (high - low) / reduction_factor ** (index + 1)
    return expected


def estimate_cost(config: ExperimentConfig, num_trials: int) -> CostEstimate:
    """Estimate the trial-hours and GPU-hours of a sweep (formula: the module docstring)."""
    sweep: SweepConfig = config.sweep
    epochs = config.train.epochs
    if scheduler_kind(sweep) == "asha":
        per_trial = asha_expected_epochs(
            epochs, sweep.scheduler.grace_period, sweep.scheduler.reduction_factor
        )
    else:
        per_trial = float(epochs)
    seeds = len(sweep.final.seeds)
    final_trials = sweep.final.top_n * seeds
    baseline_trials = len(BASELINE_LR_FACTORS) * seeds if sweep.final.top_n else 0
    scratch = config.analysis.scratch
    scratch_epochs = scratch.epochs if config.analysis.in_sweep and scratch.enabled else 0
    total_epochs = (
        num_trials * per_trial + (final_trials + baseline_trials) * epochs + scratch_epochs
    )
    trial_hours = total_epochs * sweep.budget.epoch_time_s / 3600
    return CostEstimate(
        search_trials=num_trials,
        expected_epochs_per_trial=round(per_trial, 3),
        final_trials=final_trials,
        baseline_trials_max=baseline_trials,
        scratch_epochs=scratch_epochs,
        epochs_per_trial=epochs,
        epoch_time_s=sweep.budget.epoch_time_s,
        gpus_per_trial=sweep.resources.gpus,
        trial_hours=round(trial_hours, 3),
        gpu_hours=round(trial_hours * sweep.resources.gpus, 3),
        max_wall_time_s=sweep.budget.max_wall_time_s,
    )


def _default_tracking_uri(storage: StorageLocation) -> str:
    return f"sqlite:///{storage.local_dir / 'mlflow.db'}"


def _refuse_grids(sources: list[SpaceSource], capped: list[SearchSpace], algorithm: str) -> None:
    """Only search 'grid' runs grids: a grid elsewhere is an error naming the parameter."""
    for item, space in zip(sources, capped, strict=True):
        for name, distribution in space.parameters.items():
            if isinstance(distribution, Grid):
                raise ConfigError(
                    item.field(name),
                    f"a range, a choice or a fixed value with search.algorithm "
                    f"'{algorithm}' (only 'grid' runs grids)",
                    "grid",
                    source=item.source,
                )


def _check_grace_period(config: ExperimentConfig, source: str | None) -> None:
    """A grace period past the last epoch is a mistake whichever scheduler runs (one that
    is not ASHA today may be tomorrow, with an edit of one line)."""
    scheduler = config.sweep.scheduler
    if scheduler.grace_period > config.train.epochs:
        raise ConfigError(
            "sweep.scheduler.grace_period",
            f"at most train.epochs ({config.train.epochs})",
            scheduler.grace_period,
            source=source,
        )


def _stage_one_timing(config: ExperimentConfig, source: str | None) -> StageOneTiming:
    """When stage 1 runs; 'after_search' is refused where the search acts on its evidence."""
    analysis, algorithm = config.analysis, config.sweep.search.algorithm
    if not analysis.in_sweep:
        return "off"
    if analysis_with_search(algorithm, analysis.when, analysis.veto):
        return "with_search"
    if analysis_with_search(algorithm, veto=analysis.veto):  # what 'auto' would have chosen
        raise ConfigError(
            "analysis.when",
            "'with_search' or 'auto' when the search acts on stage 1's evidence (search "
            "'nbft' waits for it; analysis.veto prunes on it)",
            analysis.when,
            source=source,
        )
    return "after_search"


def plan_sweep(config: ExperimentConfig, source: str | Path | None = None) -> SweepPlan:
    """Resolve and check a sweep without starting anything.

    Args:
        config: the validated sweep file.
        source: its path (relative space paths are looked up next to it; errors name it).

    Raises:
        ConfigError: no space, a missing or invalid space, a range impossible for the model, a
            grid with search 'tpe'/'random' (or a range with 'grid'), an ASHA grace period past
            training, stage 1 after a search that acts on it, or an unknown model.
    """
    sweep, where = config.sweep, (str(source) if source is not None else None)
    sources = load_sweep_spaces(config, source)
    _check_grace_period(config, where)
    stage_one = _stage_one_timing(config, where)  # before the model is built: a mistake fails fast
    # Imported here: counting builds the model (timm, torch); the errors above need neither.
    from nonbinary_ft.models.layers import count_layers

    num_layers = count_layers(config.model.name)
    try:
        config.settings.fit_to(num_layers, model_name=config.model.name)
    except ConfigError as error:
        why = "The sweep file's own settings are stage 3's baseline: they must fit the model."
        raise ConfigError(error.field, error.expected, error.got, why, where) from None
    capped = [
        constrain_space(item, num_layers, config.settings, config.model.name) for item in sources
    ]
    grid: tuple[dict[str, Any], ...] | None = None
    dropped = 0  # grid points invalid for the model, or repeated
    if sweep.search.algorithm == "grid":
        pairs = zip(sources, capped, strict=True)
        points, dropped = grid_points(pairs, num_layers, config.settings)
        grid, num_trials = tuple(points), len(points)
    else:
        _refuse_grids(sources, capped, sweep.search.algorithm)
        num_trials = sweep.budget.num_samples or DEFAULT_NUM_SAMPLES
    storage, notes = StorageLocation.from_config(config), []
    if dropped:
        notes.append(f"{dropped} grid points dropped (invalid for L={num_layers}, or repeated)")
    if scheduler_kind(sweep) == "asha":
        notes.append("ASHA stops trials early: the search estimate is an expectation")
    return SweepPlan(
        name=config.name,
        source=where,
        model_name=config.model.name,
        num_layers=num_layers,
        algorithm=sweep.search.algorithm,
        spaces=tuple(capped),
        grid=grid,
        dropped_grid_points=dropped,
        num_trials=num_trials,
        resources={"CPU": sweep.resources.cpus, "GPU": sweep.resources.gpus},
        storage=storage,
        tracking_uri=sweep.mlflow.tracking_uri or _default_tracking_uri(storage),
        mlflow_experiment=sweep.mlflow.experiment or config.name,
        cost=estimate_cost(config, num_trials),
        stage_one=stage_one,
        notes=tuple(notes),
    )
