"""Data sets in object storage: a ``data.root`` of ``s3://bucket/prefix`` is copied, once, to
this machine's disk and read from there.

Each Ray worker (each pod on Kubernetes) keeps its own copy under the user cache folder
(``$NBFT_DATA_CACHE``, else ``~/.cache/nbft/data``), named by the URI. A later run copies
only the objects that are missing or whose size changed, so the first trial on a node pays
the download and the others start at once. Credentials and the endpoint are boto3's own:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` (MinIO, another S3),
``AWS_REGION``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from nonbinary_ft.errors import DataError

__all__ = ["is_remote", "local_copy", "check_remote", "data_cache_dir"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
"""How long the endpoint may take to answer: a wrong endpoint fails in seconds, not minutes."""


def is_remote(root: str | Path | None) -> bool:
    """Whether a data root is an object-storage URI."""
    return isinstance(root, str) and root.startswith("s3://")


def data_cache_dir() -> Path:
    """Where remote data sets are copied: ``$NBFT_DATA_CACHE``, else ``~/.cache/nbft/data``."""
    configured = os.environ.get("NBFT_DATA_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nbft" / "data"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def _client():
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=60, retries={"max_attempts": 2})
    return boto3.client("s3", config=config)


def _objects(uri: str) -> list[tuple[str, int]]:
    """Every object under the prefix: (key relative to the prefix, size)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(uri)
    listed = []
    try:
        pages = _client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/")
                if relative and not relative.endswith("/"):
                    listed.append((relative, int(item["Size"])))
    except (BotoCoreError, ClientError) as error:
        raise DataError(f"data.root {uri}: cannot list it ({_one_line(error)})") from None
    if not listed:
        raise DataError(f"data.root {uri}: no objects under this prefix")
    return listed


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def check_remote(uri: str) -> None:
    """The prefix can be listed and holds objects (the preflight: nothing is downloaded).

    Raises:
        DataError: naming ``data.root`` and why.
    """
    _objects(uri)


def local_copy(uri: str) -> Path:
    """The prefix copied to this machine (only missing or changed objects are fetched).

    Raises:
        DataError: naming ``data.root``: it cannot be listed or an object cannot be fetched.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(uri)
    folder = data_cache_dir() / hashlib.sha256(uri.encode()).hexdigest()[:16]
    objects = _objects(uri)
    todo = [
        (key, size)
        for key, size in objects
        if not (folder / key).is_file() or (folder / key).stat().st_size != size
    ]
    if todo:
        logger.info("data: copying %d of %d objects of %s to %s", len(todo), len(objects),
                    uri, folder)  # fmt: skip
    client = _client()
    for index, (key, _) in enumerate(todo, start=1):
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            client.download_file(bucket, f"{prefix}/{key}" if prefix else key, str(partial))
        except (BotoCoreError, ClientError) as error:
            raise DataError(f"data.root {uri}: cannot fetch {key} ({_one_line(error)})") from None
        partial.replace(target)  # atomic: a killed copy never leaves a torn image
        if index % 500 == 0:
            logger.info("data: %d/%d objects copied", index, len(todo))
    (folder / ".source").write_text(uri + "\n")
    return folder
