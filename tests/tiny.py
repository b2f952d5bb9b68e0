"""The tiny experiment every test trains: test_resnet (L = 6 layers) on 3 generated classes.

32 px images and a batch of 16 keep a trial at seconds on a CPU. :func:`tiny_document` gives
it as a sweep-file mapping; keyword patches merge into its sections.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["TINY", "NUM_LAYERS", "merge", "tiny_document"]

NUM_LAYERS = 6  # test_resnet's fine-grained groups

TINY: dict[str, Any] = {
    "name": "tiny",
    "model": {"name": "test_resnet", "pretrained": "none", "image_size": 32},
    "data": {
        "kind": "synthetic",
        "batch_size": 16,
        "num_workers": 0,
        "synthetic": {"num_classes": 3, "samples_per_class": 20, "image_size": 32},
    },
    "train": {"epochs": 1, "warmup_epochs": 0, "device": "cpu"},
}


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in, mapping by mapping (neither is changed)."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def tiny_document(**patch: Any) -> dict[str, Any]:
    """The tiny experiment as a sweep-file mapping, with ``patch`` merged into its sections."""
    return merge(TINY, patch)
