"""DataLoaders: reproducible seeded shuffling, batch sizes and shapes, worker settings."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import DataSplits, ImageList, build_loaders


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255.0


def _splits(n_train: int, n_eval: int = 9) -> DataSplits:
    def images(n: int) -> list[tuple[Image.Image, int]]:
        return [(Image.new("RGB", (6, 5), (i % 256, 0, 0)), i % 3) for i in range(n)]

    classes = ("a", "b", "c")
    return DataSplits(
        train=ImageList(images(n_train), classes, to_tensor),
        val=ImageList(images(n_eval), classes, to_tensor),
        test=ImageList(images(n_eval), classes, to_tensor),
        classes=classes,
    )


def _order(loader) -> list[int]:
    # The red channel encodes the sample index.
    return [round(v * 255) for images, _ in loader for v in images[:, 0, 0, 0].tolist()]


def test_seeded_shuffle_is_reproducible() -> None:
    cfg = DataConfig(kind="synthetic", batch_size=4, num_workers=0)
    splits = _splits(20)
    first = _order(build_loaders(splits, cfg, seed=1)[0])
    again = _order(build_loaders(splits, cfg, seed=1)[0])
    other = _order(build_loaders(splits, cfg, seed=2)[0])

    assert first == again and first != other
    assert sorted(first) == list(range(20)) and first != list(range(20))


def test_batch_shapes_and_eval_order() -> None:
    cfg = DataConfig(kind="synthetic", batch_size=4, num_workers=0)
    train, val, test = build_loaders(_splits(20), cfg, seed=0)

    images, labels = next(iter(train))
    assert images.shape == (4, 3, 5, 6) and labels.shape == (4,)
    assert labels.dtype == torch.int64
    assert [len(y) for _, y in val] == [8, 1]  # eval batch: twice the training batch
    assert _order(val) == list(range(9)) and _order(test) == list(range(9))
    sized = DataConfig(kind="synthetic", batch_size=4, eval_batch_size=5, num_workers=0)
    assert [len(y) for _, y in build_loaders(_splits(20), sized, seed=0)[1]] == [5, 4]


def test_last_batch_dropped_only_when_it_would_hold_one_sample() -> None:
    cfg = DataConfig(kind="synthetic", batch_size=4, num_workers=0)
    assert [len(y) for _, y in build_loaders(_splits(9), cfg, seed=0)[0]] == [4, 4]
    assert [len(y) for _, y in build_loaders(_splits(10), cfg, seed=0)[0]] == [4, 4, 2]
    assert [len(y) for _, y in build_loaders(_splits(1), cfg, seed=0)[0]] == [1]


def test_worker_settings_follow_the_config() -> None:
    loaders = build_loaders(_splits(8), DataConfig(kind="synthetic", num_workers=1), seed=0)
    assert all(loader.num_workers == 1 and loader.persistent_workers for loader in loaders)
    assert all(loader.pin_memory == torch.cuda.is_available() for loader in loaders)
    no_workers = build_loaders(_splits(8), DataConfig(kind="synthetic", num_workers=0), seed=0)
    assert not any(loader.persistent_workers for loader in no_workers)
