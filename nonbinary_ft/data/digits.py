"""scikit-learn's ``digits``: 1797 real 8x8 grey-level images of 10 digits, shipped offline.

The images become PIL RGB so that timm's transforms resize them to the model's input like
any photograph; the split is a stratified, seeded hold-out.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import Sample, SampleSplits
from nonbinary_ft.data.splits import stratified_holdout

__all__ = ["read_digits", "digits_images"]

# load_digits stores ink counts per 4x4 cell of the original 32x32 bitmaps: 0..16.
_MAX_INK = 16


def digits_images() -> tuple[list[Image.Image], np.ndarray]:
    """All 1797 digits as 8x8 PIL RGB images (0..16 scaled to 0..255) and their labels."""
    # Imported here: sklearn.datasets takes seconds to import and most runs never need it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / _MAX_INK)).clip(0, 255).astype(np.uint8)
    # Grey to RGB by repeating the channel; fromarray infers RGB from the (8, 8, 3) uint8 shape.
    images = [Image.fromarray(np.repeat(image[:, :, None], 3, axis=2)) for image in pixels]
    return images, bunch.target.astype(np.int64)


def read_digits(cfg: DataConfig) -> SampleSplits:
    """The digits data set with stratified val/test hold-outs.

    Args:
        cfg: the data section; uses ``val_fraction``, ``test_fraction`` and ``split_seed``.

    Raises:
        nothing beyond scikit-learn's own errors: the data ships with scikit-learn.
    """
    images, labels = digits_images()
    samples: list[Sample] = [
        (image, int(label)) for image, label in zip(images, labels, strict=True)
    ]
    train, val, test = stratified_holdout(
        samples, [cfg.val_fraction, cfg.test_fraction], cfg.split_seed
    )
    return SampleSplits(train=train, val=val, test=test, classes=tuple(str(d) for d in range(10)))
