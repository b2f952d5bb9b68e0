"""Checks on the folders a command will write, made before any work is done.

A run folder, an ``--out`` folder or a cache folder that cannot be written is found here,
named by the field or option that set it, instead of as a traceback after minutes of work.
Nothing is created: a dry run leaves no trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from nonbinary_ft.errors import ConfigError

__all__ = ["check_writable_folder"]


def check_writable_folder(folder: str | Path, field: str) -> None:
    """``folder``, or the nearest folder above it that exists, is a folder this user can write.

    Args:
        folder: the folder a command will create or write into.
        field: the sweep-file field or command-line option that named it (``--out``).

    Raises:
        ConfigError: naming ``field``: a file is in the way, or the folder is not writable.
    """
    path = Path(folder).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    why = None
    if not existing.is_dir():
        why = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = f"{existing} is not writable by this user"
    if why is not None:
        raise ConfigError(field, "a folder this user can write", str(folder), why)
