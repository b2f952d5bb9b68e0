"""Which torch device a run uses (``train.device``): kept apart so that feature extraction
can ask without importing the training stack."""

from __future__ import annotations

import torch

from nonbinary_ft.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """The device ``train.device`` names; 'auto' means the first CUDA device when there is
    one, else the CPU.

    Raises:
        ConfigError: a CUDA device this machine does not have (before any work starts,
            instead of torch's error from deep inside the first transfer).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device.index or 0
        if index >= count:
            have = f"{count} CUDA device{'s' if count != 1 else ''}" if count else "no CUDA GPU"
            raise ConfigError(
                "train.device",
                "a device this machine has",
                name,
                f"This machine has {have}. Use 'auto' (the GPU when there is one) or 'cpu'.",
            )
    return device
