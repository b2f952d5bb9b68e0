"""The containers every reader fills: labelled samples, their splits, and a torch Dataset.

A reader returns :class:`SampleSplits` (file paths or in-memory PIL images with int labels);
:func:`nonbinary_ft.data.build.build_datasets` caps the training split and wraps each split
in an :class:`ImageList` that decodes to PIL RGB and applies a transform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from nonbinary_ft.errors import DataError

__all__ = ["Sample", "SampleSplits", "DataSplits", "ImageList", "load_rgb", "IMAGE_EXTENSIONS"]

# What PIL opens without plugins; compared lower-cased so 'IMG_1.JPG' counts too.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# A sample is a file (decoded lazily, so big data sets stay on disk) or an image already in
# memory (generated or shipped with a library), with its class index.
Sample = tuple[Path | Image.Image, int]


@dataclass(frozen=True)
class SampleSplits:
    """What a reader returns: train/val/test samples before transforms and capping."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    classes: tuple[str, ...]
    skipped_files: int = 0


@dataclass(frozen=True)
class DataSplits:
    """The three splits of a data set, ready for DataLoaders.

    Attributes:
        train, val, test: datasets whose items are ``(transformed image, int label)``.
        classes: class names; a label indexes this tuple.
        skipped_files: corrupt images skipped while indexing (image folders only).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    classes: tuple[str, ...]
    skipped_files: int = 0


# PIL's integer and float modes: ``convert("RGB")`` clips them at 255, so a 16-bit image
# comes out (nearly) white. They are scaled to 8 bits first, keeping their contrast.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _eight_bit(image: Image.Image) -> Image.Image:
    """A greyscale image of a wide mode as 8-bit 'L', scaled by its type's range."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        full = 65535.0
    elif image.mode == "F":
        full = 1.0 if values.size and values.max() <= 1.0 else max(float(values.max()), 1.0)
    else:  # 'I': 32-bit containers mostly carry 16-bit data
        full = 65535.0 if values.size and values.max() <= 65535 else float(values.max())
    scaled = np.clip(values / full * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as RGB with its true contrast, whatever mode PIL opened it in."""
    if image.mode in _WIDE_MODES:
        image = _eight_bit(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def load_rgb(item: Path | Image.Image) -> Image.Image:
    """Return ``item`` as a PIL RGB image, opening it first if it is a path.

    Raises:
        DataError: the file is missing or cannot be decoded (the message names it).
    """
    if isinstance(item, Image.Image):
        return to_rgb(item)
    try:
        with Image.open(item) as image:
            rgb = to_rgb(image)
            # An RGB file comes back as the opened image itself: read it in before the file
            # closes, or a DataLoader worker meets a closed file later.
            return rgb if rgb is not image else image.copy()
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(
            f"Cannot read image {item}: {err}. Replace or delete the file and restart."
        ) from err


class ImageList(Dataset):
    """A list of labelled images, decoded to RGB and transformed on access.

    Args:
        samples: ``(path or PIL image, label)`` pairs.
        classes: class names, indexed by label.
        transform: applied to the PIL RGB image; ``None`` returns the PIL image itself.

    Raises:
        DataError: on access, when a file has vanished or cannot be decoded.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: Sequence[str],
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.classes = tuple(classes)
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order (for class counts without decoding)."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        item, label = self.samples[index]
        image = load_rgb(item)
        return (self.transform(image) if self.transform is not None else image), label
