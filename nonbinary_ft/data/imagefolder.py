"""Reader for a plain folder tree: ``root/{train,val,test}/<class>/<image>``.

``train`` is required; a missing ``val`` or ``test`` is held out of ``train`` per class
(``data.val_fraction``, ``data.test_fraction``, seeded by ``data.split_seed``). Every file is
checked with PIL while indexing: a corrupt image is skipped, counted and logged once, so that a
few bad files in a scraped data set do not stop a sweep hours in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import IMAGE_EXTENSIONS, Sample, SampleSplits
from nonbinary_ft.data.remote import is_remote, local_copy
from nonbinary_ft.data.splits import stratified_holdout
from nonbinary_ft.errors import DataError

__all__ = ["read_imagefolder", "list_images"]

logger = logging.getLogger(__name__)

_LAYOUT = "root/train/<class>/<image> (optionally root/val/<class>/ and root/test/<class>/)"


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, like torchvision's ImageFolder), sorted.

    Hidden files (``.DS_Store``, editor backups) and non-image extensions are ignored.
    """
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _is_readable(path: Path) -> bool:
    # PIL raises many types on bad data (OSError, SyntaxError, struct.error, ...), so any
    # exception means the file cannot be used.
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:
        return False
    return True


def _class_folders(split_dir: Path) -> list[Path]:
    """The class folders of a split; a file where a class folder belongs is an error.

    Raises:
        DataError: naming the file (hidden files such as .DS_Store are left alone).
    """
    entries = sorted(p for p in split_dir.iterdir() if not p.name.startswith("."))
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise DataError(
            f"{stray[0]} is a file where a class folder belongs (expected {_LAYOUT}); move it "
            f"out of {split_dir}" + (f" ({len(stray) - 1} more)" if len(stray) > 1 else "")
        )
    return entries


def _index_split(
    split_dir: Path, class_to_idx: dict[str, int], skipped: list[Path]
) -> list[Sample]:
    """Samples of one split folder; corrupt files go to ``skipped``."""
    samples: list[Sample] = []
    for folder in _class_folders(split_dir):
        if folder.name not in class_to_idx:
            raise DataError(
                f"Class folder {folder} has no counterpart in {split_dir.parent / 'train'}; "
                f"every class in {split_dir.name}/ must also be a class in train/ (known: "
                f"{', '.join(sorted(class_to_idx))}). Rename or remove the folder."
            )
        files = list_images(folder)
        if not files:
            raise DataError(
                f"Class folder {folder} holds no images (expected files ending in "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}). Add images or remove the folder."
            )
        readable = {path: _is_readable(path) for path in files}
        good = [path for path in files if readable[path]]
        skipped.extend(path for path in files if not readable[path])
        if not good:
            raise DataError(
                f"Class folder {folder} holds no readable images: all {len(files)} files are "
                "corrupt. Replace them or remove the folder."
            )
        samples.extend((path, class_to_idx[folder.name]) for path in good)
    return samples


def _train_classes(root: Path | None) -> tuple[Path, tuple[str, ...]]:
    """The root, checked, and the class names: the folders of ``root/train``, sorted.

    Raises:
        DataError: the root, its train/ folder or the class folders are missing.
    """
    if root is None or not root.is_dir():
        raise DataError(
            f"Image folder {root} does not exist. Expected {_LAYOUT}; give the root as the "
            "folder that holds train/."
        )
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(
            f"Image folder {root} has no train/ folder (looked for {train_dir}). "
            f"Expected {_LAYOUT}."
        )
    classes = tuple(folder.name for folder in _class_folders(train_dir))
    if not classes:
        raise DataError(
            f"{train_dir} holds no class folders. Expected {_LAYOUT}: one sub-folder per "
            "class, named after the class."
        )
    return root, classes


def read_imagefolder(cfg: DataConfig) -> SampleSplits:
    """Index ``cfg.root`` laid out as ``root/{train,val,test}/<class>/<image>``.

    Classes are the sorted folder names of ``train``. Missing ``val``/``test`` splits are
    held out of ``train`` per class. Corrupt images are skipped, counted in
    ``skipped_files`` and logged once.

    Args:
        cfg: the data section; uses ``root``, ``val_fraction``, ``test_fraction``,
            ``split_seed``.

    Raises:
        DataError: the root or its ``train`` folder is missing, ``train`` has no class
            folders, a class folder is empty or wholly corrupt, or ``val``/``test`` holds a
            class that ``train`` lacks.
    """
    if is_remote(cfg.root):
        root = local_copy(str(cfg.root))
    else:
        root = Path(cfg.root) if cfg.root is not None else None
    root, classes = _train_classes(root)
    train_dir = root / "train"
    class_to_idx = {name: i for i, name in enumerate(classes)}
    skipped: list[Path] = []
    train = _index_split(train_dir, class_to_idx, skipped)
    found = {
        name: _index_split(root / name, class_to_idx, skipped) if (root / name).is_dir() else None
        for name in ("val", "test")
    }
    missing = [name for name, samples in found.items() if samples is None]
    if missing:
        fraction = {"val": cfg.val_fraction, "test": cfg.test_fraction}
        train, *held = stratified_holdout(
            train, [fraction[name] for name in missing], cfg.split_seed
        )
        found.update(zip(missing, held, strict=True))
    if skipped:
        shown = ", ".join(str(path) for path in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        logger.warning(
            "Skipped %d corrupt image(s) under %s: %s%s", len(skipped), root, shown, more
        )
    return SampleSplits(
        train=train,
        val=found["val"] or [],
        test=found["test"] or [],
        classes=classes,
        skipped_files=len(skipped),
    )
