"""The synthetic generator: determinism, labels that are the intended factor, disjoint tasks."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from nonbinary_ft.config import DataConfig, SyntheticConfig
from nonbinary_ft.data import COLOURS, SHAPES, class_names, generate_images, read_samples, synthetic
from nonbinary_ft.data.synthetic import task_shapes
from nonbinary_ft.errors import DataError


def _dominant_hue(image: Image.Image) -> float:
    """Circular mean hue, in degrees, of the saturated (shape) pixels."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float64)
    shape_pixels = hsv[..., 1] > 128  # the background is grey: no saturation
    angles = hsv[..., 0][shape_pixels] * (2 * np.pi / 256)
    return float(np.degrees(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())) % 360)


def _nearest_colour(hue: float) -> int:
    gaps = [abs((hue - h + 180) % 360 - 180) for _, h in COLOURS]
    return int(np.argmin(gaps))


def test_same_seed_same_images_other_seed_other_images() -> None:
    a, la = generate_images("shape", 3, 4, 16, seed=5)
    b, lb = generate_images("shape", 3, 4, 16, seed=5)
    c, _ = generate_images("shape", 3, 4, 16, seed=6)

    assert [im.tobytes() for im in a] == [im.tobytes() for im in b]
    np.testing.assert_array_equal(la, lb)
    assert [im.tobytes() for im in a] != [im.tobytes() for im in c]
    assert a[0].mode == "RGB" and a[0].size == (16, 16)
    np.testing.assert_array_equal(la, np.repeat(np.arange(3), 4))


def test_colour_task_label_is_the_hue_of_the_shape() -> None:
    images, labels = generate_images("colour", 10, 6, 32, seed=0)
    for image, label in zip(images, labels, strict=True):
        assert _nearest_colour(_dominant_hue(image)) == label


def test_shape_task_colours_vary_within_a_class() -> None:
    images, labels = generate_images("shape", 4, 20, 32, seed=1)
    for label in range(4):
        colours = {
            _nearest_colour(_dominant_hue(im))
            for im, y in zip(images, labels, strict=True)
            if y == label
        }
        assert len(colours) >= 3


def _recorded_factors(monkeypatch: pytest.MonkeyPatch, task: str, k: int) -> list[tuple]:
    calls: list[tuple] = []
    draw = synthetic._draw

    def spy(shape, colour, size, rng):
        calls.append((shape, colour))
        return draw(shape, colour, size, rng)

    monkeypatch.setattr(synthetic, "_draw", spy)
    _, labels = generate_images(task, k, 12, 16, seed=2)
    return [(int(y), shape) for y, (shape, _) in zip(labels, calls, strict=True)]


def test_shape_and_new_shape_labels_name_disjoint_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    shape = _recorded_factors(monkeypatch, "shape", 4)
    new_shape = _recorded_factors(monkeypatch, "new_shape", 4)

    assert {(y, s) for y, s in shape} == {(y, SHAPES[y]) for y in range(4)}
    assert {(y, s) for y, s in new_shape} == {(y, SHAPES[16 + y]) for y in range(4)}
    assert class_names("new_shape", 4) == SHAPES[-4:]
    for k1 in range(2, 11):
        for k2 in range(2, 11):
            assert not set(task_shapes("shape", k1)) & set(task_shapes("new_shape", k2))


def test_shape_colour_labels_both_a_new_shape_and_a_hue(monkeypatch: pytest.MonkeyPatch) -> None:
    factors = _recorded_factors(monkeypatch, "shape_colour", 4)
    # Classes 0, 1 are the first of two new shapes, in the first and second colour.
    assert {(y, s) for y, s in factors} == {(y, SHAPES[-2 + y // 2]) for y in range(4)}
    assert class_names("shape_colour", 4) == (
        f"{SHAPES[-2]} {COLOURS[0][0]}",
        f"{SHAPES[-2]} {COLOURS[1][0]}",
        f"{SHAPES[-1]} {COLOURS[0][0]}",
        f"{SHAPES[-1]} {COLOURS[1][0]}",
    )
    images, labels = generate_images("shape_colour", 4, 6, 32, seed=0)
    for image, label in zip(images, labels, strict=True):
        assert _nearest_colour(_dominant_hue(image)) == label % 2
    with pytest.raises(ValueError, match="grey"):
        generate_images("shape_colour", 4, 2, 16, seed=0, colour_mode="grey")


def test_colour_task_draws_many_shapes_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    factors = _recorded_factors(monkeypatch, "colour", 3)
    for label in range(3):
        assert len({s for y, s in factors if y == label}) >= 4


def test_catalogue_is_rich_enough() -> None:
    assert len(set(SHAPES)) == 20
    assert len({hue for _, hue in COLOURS}) == len(COLOURS) >= 6


def test_ten_classes_of_a_hundred_at_32px_take_under_two_seconds() -> None:
    start = time.perf_counter()
    images, _ = generate_images("shape", 10, 100, 32, seed=0)
    assert time.perf_counter() - start < 2.0
    assert len(images) == 1000


def test_out_of_range_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="between 2 and 10"):
        generate_images("shape", 11, 2, 16, seed=0)
    with pytest.raises(ValueError, match="task must be one of"):
        generate_images("texture", 2, 2, 16, seed=0)


def test_reader_splits_per_class() -> None:
    syn = SyntheticConfig(task="colour", num_classes=3, samples_per_class=10, image_size=16)
    cfg = DataConfig(kind="synthetic", synthetic=syn, val_fraction=0.2, test_fraction=0.3)
    samples = read_samples(cfg)

    assert samples.classes == ("red", "cyan", "yellow")
    assert Counter(y for _, y in samples.train) == {0: 5, 1: 5, 2: 5}
    assert Counter(y for _, y in samples.val) == {0: 2, 1: 2, 2: 2}
    assert Counter(y for _, y in samples.test) == {0: 3, 1: 3, 2: 3}


def test_a_split_left_empty_is_a_data_error() -> None:
    syn = SyntheticConfig(num_classes=2, samples_per_class=2, image_size=8)
    with pytest.raises(DataError, match="val split of data set kind 'synthetic' is empty"):
        read_samples(DataConfig(kind="synthetic", synthetic=syn))
