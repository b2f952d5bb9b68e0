"""The replay benchmark's tasks, tables and declared split (``split.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["read_split"]


def read_split(path: Path) -> dict[str, str]:
    """Task name -> 'design' or 'evaluation', from the declared split file."""
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text()) or {}
    return {name: split for split in ("design", "evaluation") for name in document.get(split, [])}
