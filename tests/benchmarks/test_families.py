"""The replay's image families: written as image folders the project's reader takes."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmarks.replay.collect_all import write_missing_family
from benchmarks.replay.families import FAMILIES, write_family
from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import read_samples


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_is_an_image_folder_split_by_the_fractions(tmp_path, family):
    folder = write_family(family, tmp_path, per_class=10)
    config = DataConfig(kind="imagefolder", root=folder, val_fraction=0.3, test_fraction=0.3)
    splits = read_samples(config)
    classes = len(list((folder / "train").iterdir()))
    assert classes >= 6 and len(splits.val) == 3 * classes and len(splits.test) == 3 * classes
    # Deterministic: written again elsewhere, the same pixels.
    again = write_family(family, tmp_path / "again", per_class=10)
    first = sorted((folder / "train").rglob("*.png"))[0]
    same = again / first.relative_to(folder)
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(same)))


def test_the_collection_writes_a_task_s_missing_family_first(tmp_path):
    root = tmp_path / "families" / "textures"
    task = tmp_path / "lite0-textures.yaml"
    task.write_text(yaml.safe_dump({"data": {"kind": "imagefolder", "root": str(root)}}))
    write_missing_family(task)
    config = DataConfig(kind="imagefolder", root=root, val_fraction=0.3, test_fraction=0.3)
    assert len(read_samples(config).train) > 0
    assert not (tmp_path / "families" / "letters").exists()  # only the family it reads
