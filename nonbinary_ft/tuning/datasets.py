"""The sweep's splits as MLflow dataset inputs: a name, a digest of the content, a source.

The digest is taken from the split's content key, the same fingerprint the feature cache
uses (file paths, sizes and times; in-memory images by their pixels, with their labels), so
two runs on the same images show the same digest in MLflow's Dataset column.
"""

from __future__ import annotations

import json

from nonbinary_ft.analysis.cache import data_identity, samples_fingerprint
from nonbinary_ft.config import ExperimentConfig
from nonbinary_ft.data import read_samples
from nonbinary_ft.tracking.runs import DatasetInfo

__all__ = ["DIGEST_CHARS", "dataset_inputs"]

DIGEST_CHARS = 12
"""Hex characters of the digest shown (MLflow's own datasets show 8)."""

_CONTEXTS = (("train", "training"), ("val", "validation"), ("test", "test"))


def dataset_inputs(config: ExperimentConfig) -> list[DatasetInfo]:
    """The training, validation and test splits of ``config.data``.

    Raises:
        DataError: the data cannot be read (as any data error, with the path).
    """
    data = config.data
    samples = read_samples(data)
    where = data.root if getattr(data, "root", None) else getattr(data, "name", None)
    name = f"{data.kind}:{where}" if where else str(data.kind)
    source = json.dumps(data_identity(data), sort_keys=True, default=str)
    infos = []
    for split, context in _CONTEXTS:
        items = getattr(samples, split)
        profile = json.dumps({"num_samples": len(items), "num_classes": len(samples.classes)})
        digest = samples_fingerprint(items)[:DIGEST_CHARS]
        infos.append(DatasetInfo(name, digest, str(data.kind), source, context, profile))
    return infos
