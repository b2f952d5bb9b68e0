"""Train and eval transforms from timm, with the model's own normalisation and input size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from timm.data import create_transform, resolve_data_config

from nonbinary_ft.config import DataConfig
from nonbinary_ft.errors import ConfigError

__all__ = ["create_transforms", "model_data_config"]

Transform = Callable[[Any], torch.Tensor]


def model_data_config(model: torch.nn.Module, image_size: int | None = None) -> dict[str, Any]:
    """timm's data config of ``model`` (input size, mean, std, interpolation, crop).

    The values come from ``model.pretrained_cfg``, so weights trained with their own
    normalisation (e.g. mean = std = 0.5 for the bundled EfficientNet-Lite0) are fed what
    they expect.

    Args:
        model: a timm model (anything with a ``pretrained_cfg`` dict works).
        image_size: overrides the side of the input; ``None`` keeps the model's own.

    Raises:
        ValueError: ``image_size`` is not positive.
    """
    config = dict(resolve_data_config(model=model))
    if image_size is not None:
        if image_size < 1:
            raise ValueError(f"image_size must be a positive integer but got {image_size}")
        config["input_size"] = (config["input_size"][0], image_size, image_size)
    return config


def create_transforms(
    cfg: DataConfig, model: torch.nn.Module, image_size: int | None = None
) -> tuple[Transform, Transform]:
    """Build the (train, eval) transforms for ``model`` with timm's ``create_transform``.

    Training: random resized crop, flip, colour jitter, plus ``cfg.auto_augment`` (e.g.
    RandAugment) and random erasing with ``cfg.re_prob``. Evaluation: resize and centre
    crop with the model's crop fraction. Both normalise with the model's mean and std.

    Args:
        cfg: the data section; uses ``crop_scale``, ``hflip``, ``auto_augment``, ``re_prob``.
        model: the timm model whose ``pretrained_cfg`` gives the input size and statistics.
        image_size: overrides the input side (``model.image_size`` in the config).

    Raises:
        ConfigError: ``data.auto_augment`` is not a policy timm understands.
        ValueError: ``image_size`` is not positive.
    """
    config = model_data_config(model, image_size)
    common = {
        "input_size": config["input_size"],
        "interpolation": config["interpolation"],
        "mean": config["mean"],
        "std": config["std"],
        "crop_pct": config["crop_pct"],
        "crop_mode": config.get("crop_mode"),
    }
    try:
        train = create_transform(
            **common,
            is_training=True,
            hflip=cfg.hflip,
            scale=cfg.crop_scale,
            auto_augment=cfg.auto_augment,
            re_prob=cfg.re_prob,
        )
    # timm parses the policy string with asserts and dictionary look-ups.
    except (AssertionError, KeyError, ValueError) as err:
        raise ConfigError(
            "data.auto_augment",
            "a timm augmentation policy such as 'rand-m9-mstd0.5', 'augmix-m5' or 'original'",
            cfg.auto_augment,
        ) from err
    evaluate = create_transform(**common, is_training=False)
    return train, evaluate
