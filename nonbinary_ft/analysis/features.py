"""Penultimate, globally pooled features of the pre-trained backbone, extracted once and cached.

Every split (train, val and test) goes through the model's EVALUATION transform, so the
features describe the images, not one draw of the training augmentation. When the weights
come with a source head (anything but a random init), its softmax on the target images is
kept as well (LEEP and NCE need it). See :mod:`nonbinary_ft.analysis.cache` for the key.

Typical use::

    features = extract_features(config)          # a second call is a cache hit
    features.train.features.shape                 # (N_train, D), float32
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from nonbinary_ft.analysis.cache import (
    CACHE_FORMAT,
    cache_folder,
    content_key,
    data_identity,
    load_arrays,
    samples_fingerprint,
    save_arrays,
    weights_identity,
)
from nonbinary_ft.config import DataConfig, ExperimentConfig
from nonbinary_ft.data import (
    DataSplits,
    build_datasets,
    create_transforms,
    source_sample_error,
)
from nonbinary_ft.errors import AnalysisError, NbftError
from nonbinary_ft.models.loading import create_backbone
from nonbinary_ft.training.device import resolve_device

__all__ = ["SPLITS", "SplitFeatures", "FeatureSet", "extract_features", "source_sample_features"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


# eq=False: the fields are arrays, whose == is element-wise.
@dataclass(frozen=True, eq=False)
class SplitFeatures:
    """One split's features.

    Attributes:
        features: ``(N, D)`` float32 penultimate features.
        labels: ``(N,)`` int64 target labels.
        source_probs: ``(N, Cs)`` float32 softmax of the source head, or ``None`` when the
            backbone has no pre-trained head (random init).
    """

    features: np.ndarray
    labels: np.ndarray
    source_probs: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """The features of the three splits of one data set through one backbone.

    Attributes:
        key: the cache key (SHA-256 of the inputs, see :mod:`nonbinary_ft.analysis.cache`).
        train, val, test: the splits.
        classes: class names; a label indexes this tuple.
        cache_hit: whether the arrays were read from the cache.
        path: the cache file.
    """

    key: str
    train: SplitFeatures
    val: SplitFeatures
    test: SplitFeatures
    classes: tuple[str, ...]
    cache_hit: bool
    path: Path

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return int(self.train.features.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays)."""
        return {
            "key": self.key,
            "path": str(self.path),
            "cache_hit": self.cache_hit,
            "dim": self.dim,
            "num_classes": len(self.classes),
            "samples": {name: int(getattr(self, name).labels.size) for name in SPLITS},
            "source_head": self.train.source_probs is not None,
        }


def _key_inputs(config: ExperimentConfig, data: DataConfig, splits: Any, transform: Any) -> dict:
    return {
        "format": CACHE_FORMAT,
        "model": config.model.name,
        "weights": weights_identity(config.model, config.train.seed),
        "data": data_identity(data),
        "images": {name: samples_fingerprint(getattr(splits, name).samples) for name in SPLITS},
        "image_size": config.model.image_size,
        "transform": repr(transform),
        "layer": "pre_logits",
    }


def _extract_split(
    model: torch.nn.Module,
    dataset: Dataset,
    name: str,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    source_head: bool,
    progress: bool,
) -> dict[str, np.ndarray]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    features, labels, probs = [], [], []
    bar = tqdm(
        loader,
        desc=f"features {name}",
        unit="batch",
        file=sys.stderr,
        leave=False,
        # None: tqdm shows the bar on a terminal and stays quiet in logs and CI.
        disable=None if progress else True,
    )
    with torch.inference_mode():
        for images, targets in bar:
            trunk = model.forward_features(images.to(device))
            features.append(model.forward_head(trunk, pre_logits=True).flatten(1).float().cpu())
            labels.append(targets)
            if source_head:
                probs.append(model.forward_head(trunk).float().softmax(dim=1).cpu())
    arrays = {
        f"{name}_features": torch.cat(features).numpy(),
        f"{name}_labels": torch.cat(labels).numpy().astype(np.int64),
    }
    if source_head:
        arrays[f"{name}_source_probs"] = torch.cat(probs).numpy()
    bad = int((~np.isfinite(arrays[f"{name}_features"])).any(axis=1).sum())
    if bad:
        raise AnalysisError(
            f"The pre-trained features of {bad} of {len(dataset)} {name} images are NaN or "
            "infinite: the weights are broken or the inputs are far out of range. Nothing "
            "was cached; check model.checkpoint."
        )
    return arrays


def _feature_set(key: str, arrays: dict, classes: tuple[str, ...], hit: bool, path: Path):
    def split(name: str) -> SplitFeatures:
        probs = arrays.get(f"{name}_source_probs")
        return SplitFeatures(
            features=arrays[f"{name}_features"].astype(np.float32),
            labels=arrays[f"{name}_labels"].astype(np.int64),
            source_probs=None if probs is None else probs.astype(np.float32),
        )

    return FeatureSet(key, split("train"), split("val"), split("test"), classes, hit, path)


def _compute_features(
    config: ExperimentConfig, data: DataConfig, splits: DataSplits, progress: bool
) -> dict[str, np.ndarray]:
    """Run the backbone over every split: features, labels and the source head's softmax."""
    with torch.random.fork_rng(devices=[]):
        # A random init (pretrained 'none') must give the same features every time.
        torch.manual_seed(config.train.seed)
        model = create_backbone(config.model, None)
    device = resolve_device(config.train.device)
    model.eval().to(device)
    source_head = config.model.pretrained != "none"
    arrays: dict[str, np.ndarray] = {}
    for name in SPLITS:
        arrays.update(
            _extract_split(
                model,
                getattr(splits, name),
                name,
                config.analysis.batch_size,
                data.num_workers,
                device,
                source_head,
                progress,
            )
        )
    return arrays


def extract_features(
    config: ExperimentConfig, data: DataConfig | None = None, progress: bool = True
) -> FeatureSet:
    """The backbone's penultimate features of every split, from the cache when possible.

    Args:
        config: the experiment; uses ``model``, ``train.seed`` (a random init's seed),
            ``train.device`` and ``analysis`` (cache folder, batch size).
        data: the data set to extract; default ``config.data`` (the source sample for EMD
            passes its own).
        progress: show a progress bar on stderr (on a terminal only).

    Returns:
        A :class:`FeatureSet`; ``cache_hit`` says whether anything was computed.

    Raises:
        ConfigError: unknown model, or a bad data setting.
        ModelError: the weights cannot be found or loaded.
        DataError: the data set is missing, empty or unreadable.
        AnalysisError: the backbone yields NaN or infinite features.
    """
    data = data or config.data
    random_init = config.model.architecture_only()
    # The transforms only need the architecture's pretrained_cfg, not its weights.
    _, eval_tf = create_transforms(
        data, create_backbone(random_init, None), config.model.image_size
    )
    splits = build_datasets(data, eval_tf, eval_tf)
    inputs = _key_inputs(config, data, splits, eval_tf)
    key = content_key(inputs)
    path = cache_folder(config.analysis.cache_dir, "features") / f"{key}.npz"
    cached = load_arrays(path)
    if cached is not None:
        logger.info("features: cache hit %s", key)
        return _feature_set(key, cached, tuple(splits.classes), True, path)
    logger.info("features: cache miss %s; extracting %s", key, config.model.name)

    arrays = _compute_features(config, data, splits, progress)
    save_arrays(path, arrays, {"key": key, "inputs": inputs, "classes": list(splits.classes)})
    logger.info("features: cached %s (%s)", key, path)
    stored = load_arrays(path)
    # Read back what was stored, so a miss and a later hit return identical (float16) values.
    return _feature_set(key, stored if stored is not None else arrays, splits.classes, False, path)


def source_sample_features(config: ExperimentConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Features and labels of ``analysis.source_sample`` (every split), for EMD.

    Returns:
        ``(features, labels)``, or ``None`` when no source sample is configured.

    Raises:
        ConfigError: naming ``analysis.source_sample`` when its images cannot be read.
        ModelError: as :func:`extract_features`.
    """
    source = config.analysis.source_sample
    if source is None:
        return None
    try:
        sample = extract_features(config, data=source)
    except NbftError as error:
        raise source_sample_error(source, error) from None
    parts = [getattr(sample, name) for name in SPLITS]
    return (
        np.concatenate([part.features for part in parts]),
        np.concatenate([part.labels for part in parts]),
    )
