"""DataLoaders for the three splits: seeded shuffling, sensible batching, worker settings."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import DataSplits

__all__ = ["build_loaders"]


def build_loaders(
    splits: DataSplits, cfg: DataConfig, seed: int
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Build the (train, val, test) loaders.

    The training loader shuffles with its own generator seeded by ``seed``, so that the data
    order of a trial is reproducible and independent of any other use of torch's global RNG.
    It drops the last batch only when that batch would hold a single sample, which would
    break batch norm in training mode; otherwise every sample is seen. Evaluation loaders
    keep their order and use ``cfg.eval_batch_size`` (default: twice the training batch).

    Args:
        splits: the data sets from :func:`build_datasets`.
        cfg: the data section; uses ``batch_size``, ``eval_batch_size``, ``num_workers``.
        seed: seed of the training order (and of the workers' augmentation seeds).

    Raises:
        nothing of its own.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    train_size = len(splits.train)  # type: ignore[arg-type]
    drop_last = train_size > cfg.batch_size and train_size % cfg.batch_size == 1
    eval_batch = cfg.eval_batch_size or 2 * cfg.batch_size

    def loader(dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            generator=generator if train else None,
            drop_last=drop_last if train else False,
            num_workers=cfg.num_workers,
            # Keeping workers alive saves their start-up (and dataset pickling) every epoch.
            persistent_workers=cfg.num_workers > 0,
            # Pinned memory only pays off for host-to-GPU copies.
            pin_memory=torch.cuda.is_available(),
        )

    return (
        loader(splits.train, cfg.batch_size, train=True),
        loader(splits.val, eval_batch, train=False),
        loader(splits.test, eval_batch, train=False),
    )
