"""Caltech-256 with the paper's split, on a generated tree with the real archive's layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import build_datasets, read_samples
from nonbinary_ft.data.caltech256 import CALTECH256_URL
from nonbinary_ft.errors import DataError

CLASSES = {"001.ak47": 55, "002.american-flag": 60, "003.backpack": 52}


@pytest.fixture
def caltech_root(tmp_path: Path, write_images) -> Path:
    categories = tmp_path / "caltech256" / "256_ObjectCategories"
    for folder, count in CLASSES.items():
        number = folder.split(".")[0]
        # Written in reverse so that the split cannot rely on creation order.
        names = [f"{number}_{i:04d}.jpg" for i in range(count, 0, -1)]
        write_images(categories / folder, names)
    write_images(categories / "257.clutter", [f"257_{i:04d}.jpg" for i in range(1, 8)])
    # Stray non-image files and sub-folders like those in the real archive.
    (categories / "003.backpack" / "RENAME2").write_text("not an image")
    write_images(categories / "002.american-flag" / "extra", ["002_9999.jpg"])
    return tmp_path


def _names(samples, label: int) -> list[str]:
    return [path.name for path, y in samples if y == label]


def test_split_is_30_20_rest_per_class_by_sorted_file_name(caltech_root: Path) -> None:
    samples = read_samples(DataConfig(kind="caltech256", root=caltech_root))

    assert samples.classes == ("ak47", "american-flag", "backpack")
    for label, (folder, count) in enumerate(CLASSES.items()):
        number = folder.split(".")[0]
        expected = [f"{number}_{i:04d}.jpg" for i in range(1, count + 1)]
        assert _names(samples.train, label) == expected[:30]
        assert _names(samples.val, label) == expected[30:50]
        assert _names(samples.test, label) == expected[50:]
        assert all(path.parent.name == folder for path, y in samples.test if y == label)
    assert len(samples.test) == (55 - 50) + (60 - 50) + (52 - 50)


def test_clutter_and_stray_files_are_left_out(caltech_root: Path) -> None:
    samples = read_samples(DataConfig(kind="caltech256", root=caltech_root))
    every = samples.train + samples.val + samples.test

    assert not any(path.parent.name == "257.clutter" for path, _ in every)
    assert not any(path.name in ("RENAME2", "002_9999.jpg") for path, _ in every)
    assert len(every) == sum(CLASSES.values())


def test_datasets_yield_transformed_images_with_labels(caltech_root: Path) -> None:
    cfg = DataConfig(kind="caltech256", root=caltech_root, max_train_per_class=4)
    splits = build_datasets(cfg, lambda image: torch.ones(1), lambda image: torch.zeros(1))

    assert len(splits.train) == 4 * 3  # the cap keeps the first 4 of the 30 per class
    assert len(splits.val) == 20 * 3
    image, label = splits.train[5]
    assert torch.equal(image, torch.ones(1)) and label == 1
    image, label = splits.test[len(splits.test) - 1]
    assert torch.equal(image, torch.zeros(1)) and label == 2


def test_missing_folder_names_path_and_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_samples(DataConfig(kind="caltech256", root=tmp_path / "nowhere"))
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "caltech256" / "256_ObjectCategories") in message
    assert "data.download: true" in message and CALTECH256_URL in message
    assert "\n" not in message


def test_class_too_small_for_the_split_is_an_error(tmp_path: Path, write_images) -> None:
    categories = tmp_path / "caltech256" / "256_ObjectCategories"
    write_images(categories / "001.ak47", [f"001_{i:04d}.jpg" for i in range(1, 51)])
    with pytest.raises(DataError, match="001.ak47 holds 50 images"):
        read_samples(DataConfig(kind="caltech256", root=tmp_path))
