"""Caltech-256 with the paper's split: per class, 30 train, 20 validation, the rest test.

The files are indexed here, not through ``torchvision.datasets.Caltech256``, because that
class has no split and numbers files by position; torchvision is used only to download.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import Caltech256

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import IMAGE_EXTENSIONS, Sample, SampleSplits
from nonbinary_ft.errors import DataError

__all__ = ["read_caltech256", "TRAIN_PER_CLASS", "VAL_PER_CLASS", "CALTECH256_URL"]

# torchvision's layout: Caltech256(root) reads root/caltech256/256_ObjectCategories/.
BASE_FOLDER = "caltech256"
CATEGORIES_FOLDER = "256_ObjectCategories"
# The archive torchvision's Caltech256.download() fetches.
CALTECH256_URL = "https://data.caltech.edu/records/nyy15-4j048/files/256_ObjectCategories.tar"
# The background class, which the paper (and common practice) leaves out.
CLUTTER_FOLDER = "257.clutter"

TRAIN_PER_CLASS = 30
VAL_PER_CLASS = 20


def _download(root: Path) -> None:
    try:
        Caltech256(str(root), download=True)
    except Exception as err:  # network, disk and archive errors all mean "not downloaded"
        raise DataError(
            f"Could not download Caltech-256 into {root / BASE_FOLDER} ({err}). Download "
            f"{CALTECH256_URL} by hand and unpack it into {root / BASE_FOLDER}."
        ) from err


def _class_name(folder: Path) -> str:
    # '001.ak47' -> 'ak47': the number only repeats the sort order.
    prefix, dot, name = folder.name.partition(".")
    return name if dot and prefix.isdigit() else folder.name


def _images(folder: Path) -> list[Path]:
    # Not recursive: a few class folders of the real archive hold stray sub-folders.
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_caltech256(cfg: DataConfig) -> SampleSplits:
    """Index Caltech-256 under ``cfg.root`` with the paper's per-class 30/20/rest split.

    Per class, files sorted by name: the first 30 train, the next 20 validation, the rest
    test. The clutter class (``257.clutter``) is left out, giving 256 classes.

    Args:
        cfg: the data section; uses ``root`` and ``download``.

    Raises:
        DataError: the data set is missing and ``download`` is off, the download fails,
            or a class folder holds too few images for the split (an incomplete copy).
    """
    root = Path(cfg.root) if cfg.root is not None else Path(".")
    categories = root / BASE_FOLDER / CATEGORIES_FOLDER
    if not categories.is_dir():
        if not cfg.download:
            raise DataError(
                f"Caltech-256 not found: expected {categories}/<NNN.class>/*.jpg. Set "
                f"data.download: true, or download from {CALTECH256_URL} and unpack into "
                f"{root / BASE_FOLDER}."
            )
        _download(root)
    folders = sorted(
        path for path in categories.iterdir() if path.is_dir() and path.name != CLUTTER_FOLDER
    )
    if not folders:
        raise DataError(
            f"{categories} holds no class folders; the copy is incomplete. Delete it and set "
            f"data.download: true, or unpack {CALTECH256_URL} into {root / BASE_FOLDER}."
        )
    train: list[Sample] = []
    val: list[Sample] = []
    test: list[Sample] = []
    minimum = TRAIN_PER_CLASS + VAL_PER_CLASS + 1
    for label, folder in enumerate(folders):
        files = _images(folder)
        if len(files) < minimum:
            raise DataError(
                f"Class folder {folder} holds {len(files)} images but the split needs at least "
                f"{minimum} ({TRAIN_PER_CLASS} train, {VAL_PER_CLASS} val, 1 test); the copy "
                f"is incomplete. Unpack {CALTECH256_URL} into {root / BASE_FOLDER} again."
            )
        end_val = TRAIN_PER_CLASS + VAL_PER_CLASS
        train.extend((path, label) for path in files[:TRAIN_PER_CLASS])
        val.extend((path, label) for path in files[TRAIN_PER_CLASS:end_val])
        test.extend((path, label) for path in files[end_val:])
    return SampleSplits(
        train=train, val=val, test=test, classes=tuple(_class_name(f) for f in folders)
    )
