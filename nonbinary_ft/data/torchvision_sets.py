"""Readers for the paper's other target data sets, through torchvision: Stanford Cars,
FGVC-Aircraft (variants) and DTD (partition 1).

torchvision locates and (where it still can) downloads the files; the file lists and labels
are taken from its dataset objects so that capping, hold-outs and transforms work the same
as for every other reader. Missing data becomes a one-line :class:`DataError` that names the
expected folder and how to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torchvision
from torchvision.datasets import DTD, FGVCAircraft, StanfordCars

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import Sample, SampleSplits
from nonbinary_ft.data.splits import stratified_holdout
from nonbinary_ft.errors import DataError

__all__ = ["read_stanford_cars", "read_fgvc_aircraft", "read_dtd"]

# The archives torchvision downloads (FGVCAircraft._URL, DTD._URL).
FGVC_AIRCRAFT_URL = (
    "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
)
DTD_URL = "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"
# Stanford Cars' original host is gone; torchvision points users here instead.
STANFORD_CARS_HOWTO = "https://github.com/pytorch/vision/issues/7545#issuecomment-1631441616"

Opener = Callable[[str], Any]  # split name -> torchvision dataset


def _root(cfg: DataConfig) -> Path:
    return Path(cfg.root) if cfg.root is not None else Path(".")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _open(open_split: Opener, split: str, name: str, expected: Path, how: str) -> Any:
    """Build one torchvision split, turning its missing-data errors into a DataError."""
    try:
        return open_split(split)
    # RuntimeError: "Dataset not found"; OSError: a partial copy or a failed download
    # (URLError is an OSError); ValueError: torchvision refusing to download.
    except (RuntimeError, OSError, ValueError) as err:
        # torchvision's own "Dataset not found ... use download=True" would only confuse
        # next to the config-level advice; other errors name the missing piece, keep them.
        detail = "" if isinstance(err, RuntimeError) else f" ({_one_line(err)})"
        raise DataError(
            f"{name} ({split} split) not found or incomplete: expected {expected}{detail}. {how}"
        ) from None


def _samples_of(dataset: Any) -> tuple[list[tuple[Path, int]], list[str]]:
    """File paths, labels and class names of a torchvision dataset, without decoding."""
    # torchvision lists files only in private attributes; reading them avoids decoding
    # every image just to learn its label.
    if hasattr(dataset, "_samples"):
        pairs = [(Path(path), int(label)) for path, label in dataset._samples]
    elif hasattr(dataset, "_image_files") and hasattr(dataset, "_labels"):
        pairs = [
            (Path(p), int(y)) for p, y in zip(dataset._image_files, dataset._labels, strict=True)
        ]
    else:
        raise RuntimeError(
            f"torchvision {torchvision.__version__}'s {type(dataset).__name__} no longer lists "
            "its files in _samples or _image_files/_labels; update "
            "nonbinary_ft/data/torchvision_sets.py for this version."
        )
    return pairs, [str(name) for name in dataset.classes]


def _relabel(dataset: Any, class_to_idx: dict[str, int], name: str) -> list[Sample]:
    """Samples of ``dataset`` with labels mapped, by class name, to the training classes."""
    # Each torchvision split may build its own class list (DTD sorts the classes present in
    # the split), so indices are matched by name rather than trusted across splits.
    pairs, names = _samples_of(dataset)
    unknown = sorted({names[label] for _, label in pairs} - set(class_to_idx))
    if unknown:
        raise DataError(
            f"{name}: classes {unknown[:5]} appear in an evaluation split but not in the "
            "training split; the copy is inconsistent. Download it again."
        )
    return [(path, class_to_idx[names[label]]) for path, label in pairs]


def _read(
    open_split: Opener,
    splits: dict[str, str | None],
    cfg: DataConfig,
    name: str,
    expected: Path,
    how: str,
) -> SampleSplits:
    """Index the splits named in ``splits``; a ``None`` val split is held out of train."""
    train_set = _open(open_split, "train", name, expected, how)
    _, classes = _samples_of(train_set)
    class_to_idx = {cls: i for i, cls in enumerate(classes)}
    train = _relabel(train_set, class_to_idx, name)
    val_split = splits["val"]
    if val_split is None:
        train, val = stratified_holdout(train, [cfg.val_fraction], cfg.split_seed)
    else:
        val = _relabel(_open(open_split, val_split, name, expected, how), class_to_idx, name)
    test_set = _open(open_split, str(splits["test"]), name, expected, how)
    test = _relabel(test_set, class_to_idx, name)
    return SampleSplits(train=train, val=val, test=test, classes=tuple(classes))


def read_stanford_cars(cfg: DataConfig) -> SampleSplits:
    """Stanford Cars (196 classes): torchvision's train and test; val held out of train.

    Args:
        cfg: the data section; uses ``root``, ``download``, ``val_fraction``, ``split_seed``.

    Raises:
        DataError: the files are missing (torchvision can no longer download this set, so
            ``download: true`` cannot help; the message says where to get it).
    """
    root = _root(cfg)
    expected = root / "stanford_cars"
    how = (
        "torchvision can no longer download Stanford Cars (its original URL is gone), so "
        f"download it by hand following {STANFORD_CARS_HOWTO} and unpack it so that "
        f"{expected}/devkit/cars_meta.mat, {expected}/cars_train/ and {expected}/cars_test/ "
        "exist."
    )

    def open_split(split: str) -> Any:
        # download=True makes torchvision raise even when the files are present.
        return StanfordCars(str(root), split=split, download=False)

    return _read(open_split, {"val": None, "test": "test"}, cfg, "Stanford Cars", expected, how)


def read_fgvc_aircraft(cfg: DataConfig) -> SampleSplits:
    """FGVC-Aircraft at the variant level (100 classes) with its own train/val/test splits.

    Args:
        cfg: the data section; uses ``root`` and ``download``.

    Raises:
        DataError: the files are missing and ``download`` is off, or the download fails.
    """
    root = _root(cfg)
    expected = root / "fgvc-aircraft-2013b"
    how = f"Set data.download: true, or download {FGVC_AIRCRAFT_URL} and unpack it into {root}."

    def open_split(split: str) -> Any:
        return FGVCAircraft(
            str(root), split=split, annotation_level="variant", download=cfg.download
        )

    return _read(open_split, {"val": "val", "test": "test"}, cfg, "FGVC-Aircraft", expected, how)


def read_dtd(cfg: DataConfig) -> SampleSplits:
    """The Describable Textures Dataset (47 classes), partition 1 of its train/val/test.

    Args:
        cfg: the data section; uses ``root`` and ``download``.

    Raises:
        DataError: the files are missing and ``download`` is off, or the download fails.
    """
    root = _root(cfg)
    expected = root / "dtd" / "dtd"
    how = f"Set data.download: true, or download {DTD_URL} and unpack it into {root / 'dtd'}."

    def open_split(split: str) -> Any:
        return DTD(str(root), split=split, partition=1, download=cfg.download)

    return _read(open_split, {"val": "val", "test": "test"}, cfg, "DTD", expected, how)
