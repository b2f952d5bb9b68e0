"""Helpers for the data tests: tiny image files written into temporary folder trees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WriteImages = Callable[[Path, Iterable[str]], list[Path]]


@pytest.fixture
def write_images() -> WriteImages:
    """Write a tiny distinct image for each name into ``folder`` (format from the suffix)."""
    counter = iter(range(1_000_000))

    def write(folder: Path, names: Iterable[str]) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in names:
            value = next(counter) % 256
            pixels = np.full((4, 4, 3), value, dtype=np.uint8)
            path = folder / name
            Image.fromarray(pixels).save(path)
            paths.append(path)
        return paths

    return write
