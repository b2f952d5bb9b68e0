"""scikit-learn's real digits data set as PIL RGB images with a stratified hold-out."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.datasets import load_digits

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import digits_images, read_samples
from nonbinary_ft.data.splits import holdout_count


def test_images_are_rgb_8x8_scaled_to_0_255() -> None:
    images, labels = digits_images()
    raw = load_digits()

    assert len(images) == 1797 and labels.shape == (1797,)
    assert set(labels.tolist()) == set(range(10))
    first = np.asarray(images[0])
    assert images[0].mode == "RGB" and first.shape == (8, 8, 3)
    assert (first[..., 0] == first[..., 1]).all() and (first[..., 1] == first[..., 2]).all()
    expected = np.round(raw.images[0] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(first[..., 0], expected)
    pixels = np.stack([np.asarray(image) for image in images])
    assert pixels.min() == 0 and pixels.max() == 255


def test_split_is_stratified_and_complete() -> None:
    cfg = DataConfig(kind="digits", val_fraction=0.2, test_fraction=0.1)
    samples = read_samples(cfg)
    per_class = Counter(load_digits().target.tolist())

    assert samples.classes == tuple(str(d) for d in range(10))
    assert len(samples.train) + len(samples.val) + len(samples.test) == 1797
    val = Counter(y for _, y in samples.val)
    test = Counter(y for _, y in samples.test)
    for digit, n in per_class.items():
        assert val[digit] == holdout_count(n, 0.2)
        assert test[digit] == holdout_count(n, 0.1)
    ids = {id(image) for image, _ in samples.train + samples.val + samples.test}
    assert len(ids) == 1797  # no image in two splits


def test_max_train_per_class_keeps_the_first_n() -> None:
    full = read_samples(DataConfig(kind="digits"))
    capped = read_samples(DataConfig(kind="digits", max_train_per_class=5))

    assert Counter(y for _, y in capped.train) == {d: 5 for d in range(10)}
    for digit in range(10):
        first = [np.asarray(im) for im, y in full.train if y == digit][:5]
        kept = [np.asarray(im) for im, y in capped.train if y == digit]
        assert all(np.array_equal(a, b) for a, b in zip(first, kept, strict=True))
    assert len(capped.val) == len(full.val) and len(capped.test) == len(full.test)
