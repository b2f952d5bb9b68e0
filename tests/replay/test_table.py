"""The replay table: its Parquet files round-trip, points are found by what they train."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from nonbinary_ft.history.table import (
    CURVES_FILE,
    TABLE_FORMAT,
    TableError,
    read_table,
    settings_key,
)
from tests.replay.conftest import EPOCHS, final_accuracy, make_table


def test_the_table_round_trips_with_its_format_and_evidence(table_folder):
    table = read_table(table_folder)
    assert table.task == "made-up" and table.epochs == EPOCHS and len(table.points) == 12
    assert table.best_val == pytest.approx(0.9)
    best = table.points[int(np.nanargmax(table.final_val))]
    assert (best["reinit_layers"], best["lr_high"], best["l2sp_layers"]) == (2, 0.1, "all")
    for index, point in enumerate(table.points):
        if table.epochs_of(index) == EPOCHS:
            assert table.final_val[index] == pytest.approx(final_accuracy(point))
    assert table.evidence.document["regime"]["label"] == "fits_well"
    assert table.evidence.cheap_s == 2.0 and table.evidence.scratch_s(1) == 2.0
    metadata = pq.read_schema(table_folder / CURVES_FILE).metadata
    assert metadata[b"nbft.table_format"] == str(TABLE_FORMAT).encode()


def test_a_diverged_point_stops_at_its_last_epoch(table_folder):
    table = read_table(table_folder)
    diverged = table.index_of(
        {"reinit_layers": 1, "lr_high": 0.3, "l2sp_layers": 0, "low_layers": 0, "beta": 1e-4}
    )
    assert table.epochs_of(diverged) == 2
    assert np.isnan(table.final_val[diverged]) and table.val[diverged, 1] == 0.0
    # Its two epochs are all the compute it took.
    assert np.nansum(table.epoch_s[diverged]) == pytest.approx(4.0)


def test_points_are_found_by_what_they_train(table_folder):
    table = read_table(table_folder)
    plain = {"reinit_layers": 2, "lr_high": 0.1, "l2sp_layers": 0, "low_layers": 0, "beta": 1e-4}
    # alpha without L2-SP, lr_low without low layers and lr_new = lr_high change nothing.
    same = {**plain, "alpha": 0.5, "lr_low": 0.001, "lr_new": 0.1}
    assert table.index_of(same) == table.index_of(plain)
    assert settings_key(same) == settings_key(plain)
    with pytest.raises(TableError, match="no point of the table"):
        table.index_of({**plain, "lr_high": 0.05})


def test_a_table_of_another_format_or_none_is_refused(tmp_path):
    with pytest.raises(TableError, match="no replay table"):
        read_table(tmp_path)
    folder = make_table(tmp_path / "old")
    curves = pq.read_table(folder / CURVES_FILE)
    old = {**curves.schema.metadata, b"nbft.table_format": b"0"}
    pq.write_table(curves.replace_schema_metadata(old), folder / CURVES_FILE)
    with pytest.raises(TableError, match="table format '0'"):
        read_table(folder)
    assert json.loads(settings_key({"l2sp_layers": "all", "alpha": 0.1}))["alpha"] == 0.1


def _seeded_table(folder, spread: float, val_images: int = 400):
    """The made-up table, with seeds 1 and 2 of its two best points (the best and the one
    0.1 below it) at +-``spread`` around their seed-0 accuracy."""
    from nonbinary_ft.history.table import write_table
    from tests.replay.conftest import curve

    source = read_table(make_table(folder / "source"))
    points = [(point, curve(point, diverge=False)) for point in source.points]
    order = np.argsort(-np.nan_to_num(source.final_val, nan=-1))[:2]
    repeats = []
    for index in order:
        for seed, shift in ((1, spread), (2, -spread)):
            records = curve(source.points[index], diverge=False)
            last = records[-1]
            records[-1] = type(last)(
                last.epoch, val_accuracy=last.val_accuracy + shift, test_accuracy=0.5,
                epoch_time_s=last.epoch_time_s, status=last.status,
            )  # fmt: skip
            repeats.append((int(index), seed, records))
    folder = write_table(
        folder / "seeded", "seeded", source.num_layers, source.epochs, points, None, "",
        repeats, val_images,
    )  # fmt: skip
    return read_table(folder), [int(i) for i in order]


def test_seeds_of_the_best_points_set_the_noise_and_the_target(tmp_path):
    table, (best, second) = _seeded_table(tmp_path, spread=0.15)
    assert table.seeds == 3 and table.val_images == 400
    assert np.count_nonzero(~np.isnan(table.val_seeds[:, 1])) == 2
    assert table.mean_val[best] == pytest.approx(table.final_val[best])
    assert table.seed_spread == pytest.approx(0.15)  # +-0.15 around the mean, sample std
    # 0.1 apart is within one standard deviation: both are the target.
    assert {best, second} <= table.target_points
    # With seeds that agree, the noise is one validation image and only the best is left.
    quiet, (best, _) = _seeded_table(tmp_path / "quiet", spread=0.0)
    assert quiet.noise == pytest.approx(1 / 400)
    assert quiet.target_points == {best}


def test_a_format_1_table_still_reads_with_one_seed_and_its_split_size_inferred():
    from pathlib import Path

    folder = Path(__file__).parents[2] / "benchmarks" / "replay" / "tables-v1" / "shapes-lite0"
    table = read_table(folder)
    assert table.seeds == 1 and table.val_images == 90
    assert table.noise == pytest.approx(1 / 90)
    assert int(np.nanargmax(table.final_val)) in table.target_points


def test_a_corrupt_table_is_one_clean_error(tmp_path):
    (tmp_path / CURVES_FILE).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TableError, match="not a readable replay table"):
        read_table(tmp_path)
