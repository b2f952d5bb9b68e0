"""One factory for every data set kind: pick the reader, cap, wrap with transforms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.caltech256 import read_caltech256
from nonbinary_ft.data.dataset import DataSplits, ImageList, SampleSplits
from nonbinary_ft.data.digits import read_digits
from nonbinary_ft.data.imagefolder import read_imagefolder
from nonbinary_ft.data.splits import cap_per_class
from nonbinary_ft.data.synthetic import read_synthetic
from nonbinary_ft.data.torchvision_sets import read_dtd, read_fgvc_aircraft, read_stanford_cars
from nonbinary_ft.errors import ConfigError, DataError

__all__ = ["READERS", "list_readers", "read_samples", "build_datasets"]

Reader = Callable[[DataConfig], SampleSplits]

READERS: dict[str, Reader] = {
    "imagefolder": read_imagefolder,
    "caltech256": read_caltech256,
    "stanford_cars": read_stanford_cars,
    "fgvc_aircraft": read_fgvc_aircraft,
    "dtd": read_dtd,
    "digits": read_digits,
    "synthetic": read_synthetic,
}


def list_readers() -> list[str]:
    """Names of the data set kinds, as accepted by ``data.kind``."""
    return sorted(READERS)


def read_samples(cfg: DataConfig) -> SampleSplits:
    """Read the splits of ``cfg.kind`` and keep at most ``cfg.max_train_per_class`` per class.

    The cap keeps the first samples of each class in the reader's order (sorted file
    names, or generation order), so a capped run always sees the same images.

    Raises:
        ConfigError: an unknown kind (lists the known ones).
        DataError: the reader's errors, or a split that comes out empty.
    """
    reader = READERS.get(cfg.kind)
    if reader is None:
        raise ConfigError("data.kind", f"one of {', '.join(list_readers())}", cfg.kind)
    raw = reader(cfg)
    samples = SampleSplits(
        train=cap_per_class(raw.train, cfg.max_train_per_class),
        val=raw.val,
        test=raw.test,
        classes=raw.classes,
        skipped_files=raw.skipped_files,
    )
    for name in ("train", "val", "test"):
        if not getattr(samples, name):
            # An empty split would only surface later as a NaN accuracy or a silent no-op.
            raise DataError(
                f"The {name} split of data set kind '{cfg.kind}'"
                f"{f' at {cfg.root}' if cfg.root else ''} is empty. Give each class more "
                "images, or raise data.val_fraction / data.test_fraction."
            )
    return samples


def source_sample_error(sample: DataConfig, error: Exception) -> ConfigError:
    """``analysis.source_sample`` named as the field at fault when its images cannot be read
    (the reader's own message speaks of a data set, not of which one)."""
    return ConfigError(
        "analysis.source_sample",
        "a readable image folder of source images",
        str(sample.root) if sample.root is not None else sample.kind,
        str(error),
    )


def build_datasets(
    cfg: DataConfig, train_transform: Callable[[Any], Any], eval_transform: Callable[[Any], Any]
) -> DataSplits:
    """Build the train/val/test datasets of ``cfg`` with the given transforms.

    Args:
        cfg: the data section (``kind`` picks the reader).
        train_transform: applied to training images (augmentation).
        eval_transform: applied to validation and test images.

    Returns:
        :class:`DataSplits`; its items are ``(transformed image, int label)``.

    Raises:
        ConfigError: an unknown ``kind``.
        DataError: missing, empty or unreadable data (the message says how to fix it).
    """
    samples = read_samples(cfg)
    return DataSplits(
        train=ImageList(samples.train, samples.classes, train_transform),
        val=ImageList(samples.val, samples.classes, eval_transform),
        test=ImageList(samples.test, samples.classes, eval_transform),
        classes=samples.classes,
        skipped_files=samples.skipped_files,
    )
