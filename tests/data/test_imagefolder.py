"""The image-folder reader: given and held-out splits, empty and corrupt files, bad roots."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import read_samples
from nonbinary_ft.data.dataset import load_rgb
from nonbinary_ft.data.imagefolder import read_imagefolder
from nonbinary_ft.errors import DataError


def _cfg(root: Path, **kwargs) -> DataConfig:
    return DataConfig(kind="imagefolder", root=root, **kwargs)


def _counts(samples) -> dict[int, int]:
    return dict(Counter(label for _, label in samples))


def _tree(root: Path, write_images, layout: dict[str, dict[str, int]]) -> None:
    for split, classes in layout.items():
        for name, count in classes.items():
            write_images(root / split / name, [f"{name}_{i:02d}.png" for i in range(count)])


def test_given_splits_are_read_as_they_are(tmp_path: Path, write_images) -> None:
    _tree(
        tmp_path,
        write_images,
        {"train": {"dog": 4, "cat": 3}, "val": {"dog": 2, "cat": 1}, "test": {"cat": 2}},
    )
    samples = read_samples(_cfg(tmp_path))

    assert samples.classes == ("cat", "dog")  # sorted folder names of train
    assert _counts(samples.train) == {0: 3, 1: 4}
    assert _counts(samples.val) == {0: 1, 1: 2}
    assert _counts(samples.test) == {0: 2}
    assert all(path.parent.name == samples.classes[y] for path, y in samples.train)
    assert samples.skipped_files == 0


def test_missing_val_and_test_are_held_out_per_class(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 10, "b": 20}})
    cfg = _cfg(tmp_path, val_fraction=0.2, test_fraction=0.3, split_seed=7)
    samples = read_samples(cfg)

    assert _counts(samples.val) == {0: 2, 1: 4}
    assert _counts(samples.test) == {0: 3, 1: 6}
    assert _counts(samples.train) == {0: 5, 1: 10}
    paths = [p for p, _ in samples.train + samples.val + samples.test]
    assert len(set(paths)) == 30  # disjoint and complete
    again = read_samples(cfg)
    assert again.val == samples.val and again.test == samples.test
    other = read_samples(_cfg(tmp_path, val_fraction=0.2, test_fraction=0.3, split_seed=8))
    assert other.val != samples.val


def test_only_missing_val_is_held_out(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 10, "b": 5}, "test": {"a": 1, "b": 1}})
    samples = read_samples(_cfg(tmp_path, val_fraction=0.2))

    assert _counts(samples.val) == {0: 2, 1: 1}
    assert _counts(samples.train) == {0: 8, 1: 4}
    assert [p.parent.parent.name for p, _ in samples.test] == ["test", "test"]


def test_empty_class_folder_is_named(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 3}})
    (tmp_path / "train" / "empty_one").mkdir()
    (tmp_path / "train" / "empty_one" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="empty_one holds no images"):
        read_samples(_cfg(tmp_path))


def test_corrupt_image_is_skipped_counted_and_logged(
    tmp_path: Path, write_images, caplog: pytest.LogCaptureFixture
) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 6, "b": 6}})
    bad = tmp_path / "train" / "a" / "x.jpg"
    bad.write_bytes(b"\x00garbage, not a JPEG" * 10)
    with caplog.at_level(logging.WARNING, logger="nonbinary_ft.data.imagefolder"):
        samples = read_samples(_cfg(tmp_path))

    assert samples.skipped_files == 1
    every = samples.train + samples.val + samples.test
    assert bad not in [p for p, _ in every] and len(every) == 12
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 corrupt" in warnings[0] and str(bad) in warnings[0]


def test_image_that_opens_but_fails_verification_is_skipped(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 6}})
    broken = tmp_path / "train" / "a" / "a_00.png"
    data = bytearray(broken.read_bytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF  # header parses, checksum does not
    broken.write_bytes(bytes(data))
    samples = read_samples(_cfg(tmp_path))

    assert samples.skipped_files == 1
    assert broken not in [p for p, _ in samples.train + samples.val + samples.test]


def test_class_left_empty_by_corrupt_files_is_an_error(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 3}})
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "x.JPG").write_bytes(b"garbage")
    with pytest.raises(DataError, match="b holds no readable images"):
        read_samples(_cfg(tmp_path))


def test_missing_root_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DataError, match="no_such_folder does not exist") as info:
        read_samples(_cfg(missing))
    assert str(missing) in str(info.value) and "train/<class>" in str(info.value)


def test_val_class_unknown_to_train_is_an_error(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 3}, "val": {"zebra": 1}})
    with pytest.raises(DataError, match="zebra has no counterpart"):
        read_samples(_cfg(tmp_path))


def test_extensions_are_case_insensitive_and_others_ignored(tmp_path: Path, write_images) -> None:
    write_images(tmp_path / "train" / "a", ["1.PNG", "2.jpeg", "3.bmp", "4.TIFF", "5.gif"])
    (tmp_path / "train" / "a" / "labels.csv").write_text("x")
    (tmp_path / "train" / "a" / ".hidden.png").write_bytes(b"junk")
    samples = read_samples(_cfg(tmp_path, val_fraction=0.2, test_fraction=0.2))

    every = samples.train + samples.val + samples.test
    assert sorted(p.name for p, _ in every) == ["1.PNG", "2.jpeg", "3.bmp", "4.TIFF", "5.gif"]
    assert samples.skipped_files == 0


def test_a_file_where_a_class_folder_belongs_is_named(tmp_path: Path, write_images) -> None:
    _tree(tmp_path, write_images, {"train": {"a": 3, "b": 3}})
    (tmp_path / "train" / "c.png").write_bytes(b"not a folder")
    (tmp_path / "train" / ".DS_Store").write_bytes(b"")  # hidden files are left alone
    with pytest.raises(DataError, match="c.png is a file where a class folder belongs"):
        read_imagefolder(DataConfig(kind="imagefolder", root=tmp_path))


def test_sixteen_bit_images_keep_their_contrast(tmp_path: Path) -> None:
    gradient = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    for name in ("a", "b"):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for index in range(3):
            Image.fromarray(gradient).save(folder / f"{index}.png")
    samples = read_imagefolder(DataConfig(kind="imagefolder", root=tmp_path))
    path, _ = samples.train[0]
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # a real 16-bit file, not an 8-bit one
    rgb = np.asarray(load_rgb(path))
    # The old conversion clipped everything above 255: a nearly white image.
    assert rgb.min() == 0 and rgb.max() == 255 and 120 < rgb.mean() < 135
    assert (np.diff(rgb[..., 0].ravel().astype(int)) >= 0).all()  # the gradient survives
