"""The table format: every grid point of one task trained, every epoch recorded.

A task's table is a folder of two Parquet files (format :data:`TABLE_FORMAT`):

``curves.parquet``, one row per (grid point, seed, epoch):

=================  =========  ==========================================================
column             type       meaning
=================  =========  ==========================================================
point              int32      the point's index in the grid (0-based)
seed               int32      the training seed: every point has seed 0 (the curve a
                              replay runs); the best points by seed 0 have more, so that
                              what "as good as the best" means is measured, not one draw
key                string     its canonical settings as sorted JSON (its identity)
reinit_layers ..   (setting)  the eight trial settings as trained (``l2sp_layers`` a
                              string: a layer count or ``all``)
epoch              int32      1-based
train_loss         float64    null where not finite (a diverged epoch)
val_loss           float64
val_accuracy       float64    fraction in [0, 1]
test_loss          float64
test_accuracy      float64    after the last epoch (after every epoch with
                              ``train.test_every_epoch``)
epoch_time_s       float64    training + validation seconds: what the epoch costs a sweep
status             string     ``running``, or the ending (``completed``, ``diverged``)
=================  =========  ==========================================================

Its schema metadata holds ``nbft.table_format``, ``nbft.task``, ``nbft.epochs``,
``nbft.num_layers``, ``nbft.val_images`` (the validation split's size; format 1 tables and
exported sweeps lack it, and it is then read off the accuracies' granularity) and
``nbft.task_config`` (the task's sweep file as YAML). Format 1 (one seed, no ``seed``
column) still reads.

``evidence.parquet``, one row: the task's stage-1 evidence and what each part took:
``document`` (the analysis document as JSON, the regime decided with the full scratch
budget), ``features_s``, ``probe_s``, ``scores_s`` (seconds), and the from-scratch curve as
lists: ``scratch_val_accuracy``, ``scratch_test_accuracy``, ``scratch_epoch_time_s``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from nonbinary_ft.config.settings import SETTING_NAMES, canonical_settings
from nonbinary_ft.errors import NbftError
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.search.warm_start import EvidenceVector, PastSweep

__all__ = [
    "TABLE_FORMAT",
    "CURVES_FILE",
    "EVIDENCE_FILE",
    "TableError",
    "settings_key",
    "TaskEvidence",
    "TaskTable",
    "write_table",
    "read_table",
]

TABLE_FORMAT = 2
READABLE_FORMATS = ("1", "2")
CURVES_FILE = "curves.parquet"
EVIDENCE_FILE = "evidence.parquet"
_METRICS = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "epoch_time_s")
# The table's arrays in memory, and the columns they are read from.
_ARRAYS = (("val", "val_accuracy"), ("test", "test_accuracy"), ("epoch_s", "epoch_time_s"))


class TableError(NbftError):
    """A replay table that is missing, of another format, or inconsistent."""


def settings_key(settings: Mapping[str, Any]) -> str:
    """The identity of a point: its canonical settings (unused values dropped) as JSON."""
    return json.dumps(canonical_settings(settings), sort_keys=True)


@dataclass(frozen=True)
class TaskEvidence:
    """A task's stage-1 evidence and its cost.

    Attributes:
        document: the analysis document (``analysis.json``), regime read at the full
            from-scratch budget.
        features_s, probe_s, scores_s: seconds each cheap part took.
        scratch_val, scratch_test, scratch_epoch_s: the from-scratch run, per epoch.
    """

    document: dict[str, Any]
    features_s: float
    probe_s: float
    scores_s: float
    scratch_val: tuple[float, ...] = ()
    scratch_test: tuple[float, ...] = ()
    scratch_epoch_s: tuple[float, ...] = ()

    @property
    def cheap_s(self) -> float:
        """Seconds until the cheap evidence (features, probe, scores) is in."""
        return self.features_s + self.probe_s + self.scores_s

    def scratch_s(self, epochs: int | None = None) -> float:
        """Seconds of the first ``epochs`` epochs of the from-scratch run (all by default)."""
        return float(sum(self.scratch_epoch_s[:epochs]))


@dataclass(frozen=True)
class TaskTable:
    """One task's table in memory: seed 0's curves as arrays indexed [point, epoch - 1], and
    every seed's final accuracies indexed [point, seed].

    A value is NaN where the point has no such epoch (it diverged before), no such seed, or
    the value was not finite.
    """

    task: str
    epochs: int
    num_layers: int
    points: tuple[dict[str, Any], ...]
    val: np.ndarray
    test: np.ndarray
    epoch_s: np.ndarray
    evidence: TaskEvidence | None = None
    task_config: str = ""
    val_seeds: np.ndarray | None = None
    test_seeds: np.ndarray | None = None
    val_images: int | None = None
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({settings_key(point): i for i, point in enumerate(self.points)})
        if self.val_seeds is None:
            object.__setattr__(self, "val_seeds", self.val[:, -1:].copy())
        if self.test_seeds is None:
            object.__setattr__(self, "test_seeds", self.test[:, -1:].copy())
        if self.val_images is None:
            object.__setattr__(self, "val_images", _granularity(self.val))

    def index_of(self, settings: Mapping[str, Any]) -> int:
        """The point trained with ``settings`` (unused values are ignored).

        Raises:
            TableError: no point of the table trains that way.
        """
        try:
            return self._index[settings_key(settings)]
        except KeyError:
            raise TableError(
                f"task {self.task}: no point of the table trains with {dict(settings)}"
            ) from None

    def epochs_of(self, point: int) -> int:
        """How many epochs the point ran (fewer than ``epochs`` when it diverged)."""
        return int(np.count_nonzero(~np.isnan(self.epoch_s[point])))

    @property
    def final_val(self) -> np.ndarray:
        """Each point's validation accuracy after its last epoch, seed 0 (NaN: never
        completed)."""
        return self.val[:, -1]

    @property
    def best_val(self) -> float:
        """The table's best validation accuracy at the full budget, seed 0."""
        return float(np.nanmax(self.final_val))

    @property
    def seeds(self) -> int:
        """The most seeds any point has."""
        return int(self.val_seeds.shape[1])

    @property
    def mean_val(self) -> np.ndarray:
        """Each point's final validation accuracy, averaged over its seeds (NaN: none)."""
        return _nanmean_rows(self.val_seeds)

    @property
    def mean_test(self) -> np.ndarray:
        """Each point's final test accuracy, averaged over its seeds (NaN: none)."""
        return _nanmean_rows(self.test_seeds)

    @property
    def seed_spread(self) -> float:
        """The pooled standard deviation of the final validation accuracy across seeds, over
        the points with two or more (0 when none has)."""
        counts = np.sum(~np.isnan(self.val_seeds), axis=1)
        repeated = self.val_seeds[counts >= 2]
        if not len(repeated):
            return 0.0
        deviations = repeated - _nanmean_rows(repeated)[:, None]
        dof = int(np.sum(counts[counts >= 2] - 1))
        return float(np.sqrt(np.nansum(deviations**2) / dof))

    @property
    def noise(self) -> float:
        """What accuracy difference the table cannot tell apart: one validation image, or one
        standard deviation across seeds when that is larger."""
        return max(1.0 / (self.val_images or 1), self.seed_spread)

    @property
    def target_points(self) -> frozenset[int]:
        """The points as good as the best: mean validation accuracy within :attr:`noise` of
        the best mean."""
        mean = self.mean_val
        best = float(np.nanmax(mean))
        return frozenset(int(i) for i in np.flatnonzero(mean >= best - self.noise - 1e-9))

    def as_past_sweep(self) -> PastSweep:
        """The table as a past sweep of the history: its cheap evidence, its completed points
        ranked by final validation accuracy.

        Raises:
            TableError: the table has no usable evidence.
        """
        document = self.evidence.document if self.evidence is not None else None
        vector = EvidenceVector.from_document(document)
        if vector is None:
            raise TableError(f"task {self.task}: no fixed-feature accuracy and Fisher score")
        final = self.final_val
        order = [int(i) for i in np.argsort(-np.nan_to_num(final, nan=-np.inf), kind="stable")]
        ranked = tuple(
            (dict(self.points[i]), float(final[i])) for i in order if np.isfinite(final[i])
        )
        regime = str(((document or {}).get("regime") or {}).get("label", "unknown"))
        gap = ((document or {}).get("table1") or {}).get("gap")
        return PastSweep(
            self.task, vector, ranked, f"table {self.task}", regime,
            float(gap) if isinstance(gap, int | float) else None, model=self.model,
        )  # fmt: skip

    @property
    def model(self) -> str:
        """The model the task fine-tunes ('' when its sweep file is not recorded)."""
        try:
            document = yaml.safe_load(self.task_config) or {}
            return str((document.get("model") or {}).get("name", ""))
        except (yaml.YAMLError, AttributeError):
            return ""

    @property
    def grid_compute_s(self) -> float:
        """What training every point to the end cost (seconds)."""
        return float(np.nansum(self.epoch_s))


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """The mean of each row's finite values; NaN for a row without any."""
    counts = np.sum(~np.isnan(values), axis=1)
    sums = np.nansum(values, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _granularity(accuracies: np.ndarray, largest: int = 20_000) -> int | None:
    """The smallest split size whose accuracies (k / n) all the values are: a table without
    ``nbft.val_images`` (format 1, an exported sweep) is read this way. None: no value."""
    values = accuracies[np.isfinite(accuracies)]
    values = np.unique(values[(values > 0) & (values < 1)])
    if not len(values):
        return None
    for size in range(2, largest + 1):
        scaled = values * size
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * size):
            return size
    return None


def _rows(
    point: int, seed: int, settings: Mapping[str, Any], history: Sequence[EpochRecord]
) -> list[dict]:
    key = settings_key(settings)
    fixed = {name: settings.get(name) for name in SETTING_NAMES}
    fixed["l2sp_layers"] = str(fixed["l2sp_layers"])
    return [
        {
            "point": point,
            "seed": seed,
            "key": key,
            **fixed,
            "epoch": record.epoch,
            **{name: getattr(record, name) for name in _METRICS},
            "status": str(record.status),
        }
        for record in history
    ]


def write_table(
    folder: str | Path,
    task: str,
    num_layers: int,
    epochs: int,
    points: Sequence[tuple[Mapping[str, Any], Sequence[EpochRecord]]],
    evidence: TaskEvidence | None,
    task_config: str = "",
    repeats: Sequence[tuple[int, int, Sequence[EpochRecord]]] = (),
    val_images: int | None = None,
) -> Path:
    """Write a task's table (the module docstring's format) into ``folder``.

    Args:
        points: each point's settings and its epochs (seed 0), in grid order.
        evidence: the stage-1 evidence (None: the table has none).
        task_config: the task's sweep file as YAML.
        repeats: more seeds of some points: (point index, seed >= 1, its epochs).
        val_images: the validation split's size (None: read off the accuracies).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        row
        for i, (settings, history) in enumerate(points)
        for row in _rows(i, 0, settings, history)
    ]
    rows += [
        row for i, seed, history in repeats for row in _rows(i, seed, points[i][0], history)
    ]
    metadata = {
        "nbft.table_format": str(TABLE_FORMAT),
        "nbft.task": task,
        "nbft.epochs": str(epochs),
        "nbft.num_layers": str(num_layers),
        "nbft.task_config": task_config,
    }
    if val_images is not None:
        metadata["nbft.val_images"] = str(val_images)
    curves = pa.Table.from_pylist(rows).replace_schema_metadata(metadata)
    pq.write_table(curves, out / CURVES_FILE)
    if evidence is not None:
        row = {
            "task": task,
            "document": json.dumps(evidence.document),
            "features_s": evidence.features_s,
            "probe_s": evidence.probe_s,
            "scores_s": evidence.scores_s,
            "scratch_val_accuracy": list(evidence.scratch_val),
            "scratch_test_accuracy": list(evidence.scratch_test),
            "scratch_epoch_time_s": list(evidence.scratch_epoch_s),
        }
        pq.write_table(pa.Table.from_pylist([row]), out / EVIDENCE_FILE)
    return out


def _evidence(path: Path) -> TaskEvidence | None:
    if not path.is_file():
        return None
    (row,) = pq.read_table(path).to_pylist()
    return TaskEvidence(
        document=json.loads(row["document"]),
        features_s=row["features_s"],
        probe_s=row["probe_s"],
        scores_s=row["scores_s"],
        scratch_val=tuple(row["scratch_val_accuracy"]),
        scratch_test=tuple(row["scratch_test_accuracy"]),
        scratch_epoch_s=tuple(row["scratch_epoch_time_s"]),
    )


def _settings_of(row: Mapping[str, Any]) -> dict[str, Any]:
    settings = {name: row[name] for name in SETTING_NAMES}
    raw = settings["l2sp_layers"]
    settings["l2sp_layers"] = raw if raw == "all" else int(raw)
    return settings


def read_table(folder: str | Path) -> TaskTable:
    """Read a task's table.

    Raises:
        TableError: no table there, one of another format, or a file that is not a table
            (named, with what is wrong).
    """
    path = Path(folder) / CURVES_FILE
    if not path.is_file():
        raise TableError(f"{folder}: no replay table ({CURVES_FILE} is missing)")
    try:
        curves = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in (curves.schema.metadata or {}).items()}
        if meta.get("nbft.table_format") not in READABLE_FORMATS:
            raise TableError(
                f"{path}: table format {meta.get('nbft.table_format')!r}, expected one of "
                f"{', '.join(READABLE_FORMATS)}"
            )
        epochs = int(meta["nbft.epochs"])
        rows = curves.to_pylist()
        table = _table_from_rows(rows, meta, epochs)
        return dataclasses.replace(table, evidence=_evidence(Path(folder) / EVIDENCE_FILE))
    except TableError:
        raise
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError, IndexError) as error:
        raise TableError(
            f"{path}: not a readable replay table ({type(error).__name__}: {error})"
        ) from None


def _table_from_rows(rows: list[dict[str, Any]], meta: Mapping[str, str], epochs: int) -> TaskTable:
    count = 1 + max(row["point"] for row in rows) if rows else 0
    seeds = 1 + max((row.get("seed") or 0 for row in rows), default=0)
    points: list[dict[str, Any]] = [{} for _ in range(count)]
    arrays = {name: np.full((count, epochs), np.nan) for name, _ in _ARRAYS}
    finals = {name: np.full((count, seeds), np.nan) for name in ("val", "test")}
    for row in rows:
        point, epoch, seed = row["point"], row["epoch"] - 1, row.get("seed") or 0
        if seed == 0:
            points[point] = _settings_of(row)
            for name, column in _ARRAYS:
                if row[column] is not None:
                    arrays[name][point, epoch] = row[column]
        if epoch == epochs - 1:
            for name in ("val", "test"):
                value = row[f"{name}_accuracy"]
                if value is not None:
                    finals[name][point, seed] = value
    val_images = meta.get("nbft.val_images")
    return TaskTable(
        task=meta["nbft.task"],
        epochs=epochs,
        num_layers=int(meta["nbft.num_layers"]),
        points=tuple(points),
        val=arrays["val"],
        test=arrays["test"],
        epoch_s=arrays["epoch_s"],
        task_config=meta.get("nbft.task_config", ""),
        val_seeds=finals["val"],
        test_seeds=finals["test"],
        val_images=int(val_images) if val_images else None,
    )
