"""Stanford Cars, FGVC-Aircraft and DTD through torchvision.

No network here: the real data sets cannot be read. These tests check the missing-data
errors, and the reading of the file lists on small generated trees with torchvision's
expected layout (tiny images, invented class names); they say nothing about the real files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import read_samples
from nonbinary_ft.errors import DataError

EXPECTED_FOLDER = {
    "stanford_cars": "stanford_cars",
    "fgvc_aircraft": "fgvc-aircraft-2013b",
    "dtd": "dtd/dtd",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_FOLDER))
def test_missing_data_is_one_line_naming_path_and_download(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        read_samples(DataConfig(kind=kind, root=root, download=False))
    message = str(info.value)
    assert "\n" not in message
    assert str(root / EXPECTED_FOLDER[kind]) in message
    assert "download" in message.lower()
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_stanford_cars_download_request_explains_where_to_get_it(
    tmp_path: Path, monkeypatch
) -> None:
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    # download: true is answered with instructions, before any connection is made.
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(DataError, match="can no longer download Stanford Cars") as info:
        read_samples(DataConfig(kind="stanford_cars", root=tmp_path, download=True))
    assert "github.com/pytorch/vision/issues/7545" in str(info.value)


def test_dtd_generated_layout_maps_labels_by_name(tmp_path: Path, write_images) -> None:
    data = tmp_path / "dtd" / "dtd"
    files = {"train": ["banded/b1.jpg", "dotted/d1.jpg", "dotted/d2.jpg"]}
    files["val"] = ["dotted/d3.jpg"]  # DTD numbers classes per split: 'dotted' is 0 here
    files["test"] = ["banded/b2.jpg", "dotted/d4.jpg"]
    (data / "labels").mkdir(parents=True)
    for split, names in files.items():
        (data / "labels" / f"{split}1.txt").write_text("\n".join(names) + "\n")
        for name in names:
            write_images(data / "images" / name.split("/")[0], [name.split("/")[1]])
    samples = read_samples(DataConfig(kind="dtd", root=tmp_path))

    assert samples.classes == ("banded", "dotted")
    assert [(p.name, y) for p, y in samples.train] == [("b1.jpg", 0), ("d1.jpg", 1), ("d2.jpg", 1)]
    assert [(p.name, y) for p, y in samples.val] == [("d3.jpg", 1)]
    assert [(p.name, y) for p, y in samples.test] == [("b2.jpg", 0), ("d4.jpg", 1)]


def test_fgvc_generated_layout_uses_variant_splits(tmp_path: Path, write_images) -> None:
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\nA300B4\n")
    splits = {"train": [("1", "A300B4"), ("2", "707-320")], "val": [("3", "707-320")]}
    splits["test"] = [("4", "A300B4")]
    for split, rows in splits.items():
        lines = "".join(f"{image} {label}\n" for image, label in rows)
        (data / f"images_variant_{split}.txt").write_text(lines)
        write_images(data / "images", [f"{image}.jpg" for image, _ in rows])
    samples = read_samples(DataConfig(kind="fgvc_aircraft", root=tmp_path))

    assert samples.classes == ("707-320", "A300B4")
    assert [(p.name, y) for p, y in samples.train] == [("1.jpg", 1), ("2.jpg", 0)]
    assert [(p.name, y) for p, y in samples.val] == [("3.jpg", 0)]
    assert [(p.name, y) for p, y in samples.test] == [("4.jpg", 1)]


def _annotations(rows: list[tuple[str, int]]) -> np.ndarray:
    table = np.zeros(len(rows), dtype=[("fname", object), ("class", object)])
    for i, (name, label) in enumerate(rows):
        table[i] = (name, label)
    return table


def test_stanford_cars_generated_layout_holds_out_val(tmp_path: Path, write_images) -> None:
    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = np.array(["Audi A4 2010", "BMW M3 2012"], dtype=object)
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    train = [(f"{i:05d}.jpg", 1 + i % 2) for i in range(10)]  # classes are 1-based there
    test = [("t1.jpg", 2), ("t2.jpg", 1)]
    scipy.io.savemat(base / "devkit" / "cars_train_annos.mat", {"annotations": _annotations(train)})
    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", {"annotations": _annotations(test)})
    write_images(base / "cars_train", [name for name, _ in train])
    write_images(base / "cars_test", [name for name, _ in test])
    cfg = DataConfig(kind="stanford_cars", root=tmp_path, val_fraction=0.2, test_fraction=0.1)
    samples = read_samples(cfg)

    assert samples.classes == ("Audi A4 2010", "BMW M3 2012")
    assert len(samples.train) == 8 and len(samples.val) == 2
    assert sorted(y for _, y in samples.val) == [0, 1]  # one per class: stratified
    assert all(int(p.stem) % 2 == y for p, y in samples.train + samples.val)
    assert [(p.name, y) for p, y in samples.test] == [("t1.jpg", 1), ("t2.jpg", 0)]
