"""A controlled transfer suite: one source, a near and a far target, related by construction.

The analysis claims to tell "weights fit well" from "weights fit poorly" (the paper's
sections 4.1 and 4.6, table 7). This module builds a case where the answer is known, from
the shape generator of :mod:`nonbinary_ft.data.synthetic`:

- **Source.** ``test_resnet`` (timm, with a ``group_matcher``; 6 layers) is trained from
  random init, through :func:`~nonbinary_ft.training.trial.run_trial`, to name the first 10
  shapes drawn in GREY (``colour_mode: grey``: R = G = B, random brightness). The source
  therefore learns shape and never sees colour: the gradient of the stem convolution is the
  same for its three input channels, so the stem's response to chroma (any input
  direction orthogonal to (1, 1, 1)) is whatever the random init left there.
  :func:`make_colour_blind` removes that untrained part by replacing each stem filter's
  three channel slices by their mean; on grey inputs this changes nothing (the source's
  accuracy is the same), on coloured inputs the network now sees exactly the brightness
  ``(R + G + B) / 3``. The state dict is saved as a checkpoint, cached on disk under a
  content key of everything that decides it (:func:`source_key`).
- **Near target** (``new_shape``): the last shapes of the generator, disjoint from the
  source's, painted in ``isoluminant`` colours. The source's shape features separate them,
  so a linear probe on the frozen features beats training from scratch on the same small
  budget: the gap ``scratch - fixed`` is strongly negative, regime ``fits_well``.
- **Far target** (``colour``): the label is the hue of the same ``isoluminant`` shapes.
  Their brightness is drawn independently of the hue, so the colour-blind features carry
  nothing about the label (the probe stays near chance) while a model trained from scratch
  learns the hue at once: positive gap, regime ``fits_poorly``.

The two targets share the generator, image size, class count (6), evaluation splits and
budget (10 epochs, batch 12); they differ in the factor that labels them and in how many
training images they get (:class:`SuiteSpec`: 6 per class for near; 10 for far in "small",
30 in "full").
Their base learning rate ``settings.lr_high = 0.3``, the LR table 7's recommendations scale
(``fits_poorly`` keeps it, ``fits_well`` divides it by 10), is the best single fine-tuning LR
of the small far target; the near target's best is ten times lower (paper's figure 1).

Measured with ``python -m benchmarks.transfer_suite [--size small|full] [--lr-sweep ...]``
(2-core CPU shared with other jobs, 1 torch thread; deterministic, so reruns agree). Fixed,
scratch and gap are validation accuracies as the analysis uses them; "well" and "poorly"
are the mean test accuracies (seeds 0, 1, 2) of the two regimes' recommended settings run
on the target with the same budget (:func:`compare_regimes`):

=============  ======  =======  ======  ===========  ======  ======
suite, target  fixed   scratch  gap     regime       well    poorly
=============  ======  =======  ======  ===========  ======  ======
small, near    0.933   0.217    -0.717  fits_well    0.948   0.800
small, far     0.283   0.933    +0.650  fits_poorly  0.644   0.989
full, near     0.925   0.283    -0.642  fits_well    0.880   0.802
full, far      0.217   0.908    +0.692  fits_poorly  0.530   0.924
=============  ======  =======  ======  ===========  ======  ======

Chance is 0.167. Sources: 0.9375 (small) and 0.985 (full) validation accuracy on 10 grey
shapes, the same before and after :func:`make_colour_blind`. Without that step the far probe
reached 0.53 to 0.78 on 4 colours in an early version: the stem's random chroma response
leaks colour into the features. Another generator seed (``build_suite(..., seed=1)``) gives
the same regimes and the same winners (small: near 0.878 vs 0.670, far 0.893 vs 0.530).

The single-LR curves (binary default, mean val over the seeds, LR 0.01 / 0.03 / 0.1 / 0.3 /
0.6) say why the comparison comes out this way: small near 0.71 / 0.93 / 0.91 / 0.74 / 0.26,
small far 0.20 / 0.34 / 0.95 / 1.00 / 0.79; full near 0.70 / 0.83 / 0.93 / 0.74 / 0.26, full
far 0.20 / 0.35 / 1.00 / 0.87 / 0.35. A LR ten times too low costs the near target little
(its features are already right) and the far target everything (its stem must learn colour
from nothing). In the full suite both optima sit at 0.1, so there the result rests on that
asymmetry, and it depends on the base LR: with ``lr_high = 0.1`` ``fits_well`` would train
the near target at 0.01, which the curve puts well below ``fits_poorly`` at 0.1 (0.70 vs
0.93; not run with the full recommended settings).

Typical use::

    suite = build_suite("small", cache_dir=".nbft-cache")   # pays for pre-training once
    report = analyse(suite.near, workdir)                   # -> regime "fits_well"
    comparison = compare_regimes(suite.near, seeds=(0, 1))
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import timm
import torch

from nonbinary_ft.analysis.cache import content_key
from nonbinary_ft.config import ExperimentConfig, validate_model
from nonbinary_ft.errors import ConfigError, ModelError
from nonbinary_ft.vocabulary import RegimeLabel

__all__ = [
    "SUITE_FORMAT",
    "SuiteSize",
    "TargetName",
    "EXPECTED_REGIMES",
    "SuiteSpec",
    "SUITE_SPECS",
    "SourceModel",
    "TransferSuite",
    "source_config",
    "target_config",
    "source_key",
    "make_colour_blind",
    "pretrain_source",
    "build_suite",
]

logger = logging.getLogger(__name__)

# Bumped whenever the construction changes in a way the key cannot see (the generator's
# drawing code, the blinding step): old cached sources then miss.
SUITE_FORMAT = 1

SuiteSize = Literal["small", "full"]
TargetName = Literal["near", "far"]

EXPECTED_REGIMES: dict[str, RegimeLabel] = {"near": "fits_well", "far": "fits_poorly"}
"""The regime each target is built to be in."""

_TASKS = {"near": "new_shape", "far": "colour"}
# The sections of the source run's config that decide its weights.
_KEYED = ("model", "data", "train", "settings")


@dataclass(frozen=True)
class SuiteSpec:
    """The sizes and budgets of one suite.

    Attributes:
        model: timm model name (needs a ``group_matcher`` and a 3-channel first conv).
        image_size: side of the generated images and of the model input.
        source_classes, source_samples_per_class, source_epochs, source_lr,
            source_batch_size: the grey-shape pre-training (75 % of the images train,
            12.5 % validate, 12.5 % test).
        target_classes, target_samples_per_class: each target's data; split into
            ``target_val_fraction`` / ``target_test_fraction`` / the rest for training.
        near_train_per_class, far_train_per_class: caps on each target's training images
            per class (``data.max_train_per_class``; ``None``: all of the rest). The near
            target is kept small: with few images the from-scratch model cannot learn shapes
            and a high LR wrecks the pre-trained features, the regime where the paper's
            well-fitting targets sit. The far target keeps more, so that learning the colour
            is possible on the budget, as from scratch on the paper's Cars and Aircraft.
        target_epochs: the budget of every target run (from scratch, fine-tuning).
        base_lr: the targets' ``settings.lr_high``, the LR the recommendations scale.
        target_batch_size: training batch of every target run.
        seed: seed of the source data; the targets use ``seed + 1``.
        source_task, source_colour_mode: what the source learns to name and how its shapes
            are painted. The suite's own source names grey shapes (and is then made
            colour-blind); ``"colour"`` in ``"isoluminant"`` paint gives a source that knows
            hue and nothing else, the poorly fitting source of the replay's ``hue-`` tasks.
    """

    model: str = "test_resnet"
    image_size: int = 32
    source_classes: int = 10
    source_samples_per_class: int = 64
    source_epochs: int = 12
    source_lr: float = 0.2
    source_batch_size: int = 32
    target_classes: int = 6
    target_samples_per_class: int = 40
    target_val_fraction: float = 0.25
    target_test_fraction: float = 0.375
    near_train_per_class: int | None = 6
    far_train_per_class: int | None = 10
    target_epochs: int = 10
    base_lr: float = 0.3
    target_batch_size: int = 12
    seed: int = 0
    source_task: Literal["shape", "colour"] = "shape"
    source_colour_mode: Literal["grey", "hue", "isoluminant"] = "grey"


SUITE_SPECS: dict[str, SuiteSpec] = {
    # Seconds to a minute on two CPU cores: what the tests build.
    "small": SuiteSpec(),
    # Larger for the benchmarks: more source data and a longer pre-training, more
    # target classes and larger evaluation splits (less noisy accuracies).
    "full": SuiteSpec(
        source_samples_per_class=160,
        source_epochs=20,
        target_samples_per_class=80,
        far_train_per_class=None,
    ),
}


@dataclass(frozen=True)
class SourceModel:
    """The pre-trained source checkpoint (colour-blind when trained on grey) and how it
    was made.

    Attributes:
        checkpoint: the state-dict file (``pretrained: checkpoint`` loads it).
        key: its content key (:func:`source_key`).
        val_accuracy, test_accuracy: the source model's accuracy on its source task, after
            blinding for a grey source (equal to before: the step changes nothing on grey
            inputs).
        train_seconds: the pre-training time when it was built (0 for a cache hit).
        cache_hit: whether the checkpoint was read from the cache.
    """

    checkpoint: Path
    key: str
    val_accuracy: float
    test_accuracy: float | None
    train_seconds: float
    cache_hit: bool


@dataclass(frozen=True)
class TransferSuite:
    """A source checkpoint and the configs of the two targets pointing at it.

    Attributes:
        size: ``"small"`` or ``"full"``.
        spec: its sizes and budgets.
        source: the pre-trained checkpoint.
        near, far: the targets' experiments (``pretrained: checkpoint``).
    """

    size: str
    spec: SuiteSpec
    source: SourceModel
    near: ExperimentConfig
    far: ExperimentConfig

    def target(self, name: TargetName) -> ExperimentConfig:
        """The config of target ``"near"`` or ``"far"``.

        Raises:
            ConfigError: another name.
        """
        if name not in _TASKS:
            raise ConfigError("target", "'near' or 'far'", name)
        return self.near if name == "near" else self.far

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "size": self.size,
            "spec": asdict(self.spec),
            "source": {**asdict(self.source), "checkpoint": str(self.source.checkpoint)},
            "expected_regimes": dict(EXPECTED_REGIMES),
        }


def _spec(size: str) -> SuiteSpec:
    spec = SUITE_SPECS.get(size)
    if spec is None:
        raise ConfigError("size", f"one of {', '.join(sorted(SUITE_SPECS))}", size)
    return spec


def _data(
    spec: SuiteSpec, synthetic: dict[str, Any], val: float, test: float, batch_size: int
) -> dict[str, Any]:
    return {
        "kind": "synthetic",
        "synthetic": {"image_size": spec.image_size, **synthetic},
        "val_fraction": val,
        "test_fraction": test,
        # Shapes fill a third to four fifths of the image: a crop below 60 % could cut the
        # shape that names the class.
        "crop_scale": [0.6, 1.0],
        "batch_size": batch_size,
        # The images are tiny and in memory: worker start-up costs more than it saves.
        "num_workers": 0,
    }


def _source_data(spec: SuiteSpec, samples_per_class: int, seed: int) -> dict[str, Any]:
    synthetic = {
        "task": spec.source_task,
        "num_classes": spec.source_classes,
        "samples_per_class": samples_per_class,
        "seed": seed,
        "colour_mode": spec.source_colour_mode,
    }
    return _data(spec, synthetic, 0.125, 0.125, spec.source_batch_size)


def source_config(spec: SuiteSpec) -> ExperimentConfig:
    """The pre-training run: ``spec.model`` from random init on the source task (grey
    shapes unless the spec says otherwise).

    Raises:
        ConfigError: a spec the config rejects (e.g. more than 10 classes).
    """
    return _validate(
        {
            "name": "transfer-suite-source",
            "model": {"name": spec.model, "pretrained": "none", "image_size": spec.image_size},
            "data": _source_data(spec, spec.source_samples_per_class, spec.seed),
            # On the CPU wherever it runs, so that the cached weights do not depend on the
            # machine that happened to build them first.
            "train": {"epochs": spec.source_epochs, "seed": spec.seed, "device": "cpu"},
            "settings": {"lr_high": spec.source_lr},
        }
    )


def target_config(
    spec: SuiteSpec, name: TargetName, checkpoint: str | Path, cache_dir: str | Path
) -> ExperimentConfig:
    """The experiment of target ``name`` (``"near"`` or ``"far"``) on ``checkpoint``.

    Its ``analysis`` section caches features under ``cache_dir``, gives the from-scratch
    baseline the targets' budget and LR, and names a sample of the source data (other
    images of the same grey shapes) so that the EMD similarity is computed too.

    Raises:
        ConfigError: an unknown target name, or a spec the config rejects.
    """
    if name not in _TASKS:
        raise ConfigError("target", "'near' or 'far'", name)
    synthetic = {
        "task": _TASKS[name],
        "num_classes": spec.target_classes,
        "samples_per_class": spec.target_samples_per_class,
        "seed": spec.seed + 1,
        "colour_mode": "isoluminant",
    }
    # Another seed than the source's training images, and few of them: EMD needs class
    # means, not a data set.
    source_sample = _source_data(spec, 8, spec.seed + 1000)
    return _validate(
        {
            "name": f"transfer-suite-{name}",
            "model": {
                "name": spec.model,
                "pretrained": "checkpoint",
                "checkpoint": str(checkpoint),
                "image_size": spec.image_size,
            },
            "data": {
                **_data(
                    spec,
                    synthetic,
                    spec.target_val_fraction,
                    spec.target_test_fraction,
                    spec.target_batch_size,
                ),
                "max_train_per_class": (
                    spec.near_train_per_class if name == "near" else spec.far_train_per_class
                ),
            },
            "train": {"epochs": spec.target_epochs, "seed": 0},
            "settings": {"lr_high": spec.base_lr},
            "analysis": {
                "cache_dir": str(cache_dir),
                "source_sample": source_sample,
                "scratch": {"epochs": spec.target_epochs, "lr": spec.base_lr},
            },
        }
    )


def _validate(raw: dict[str, Any]) -> ExperimentConfig:
    return validate_model(ExperimentConfig, raw, "transfer suite")


def source_key(spec: SuiteSpec) -> str:
    """The content key of the source checkpoint: every input that decides its weights.

    The source run's model, data, recipe and settings (not the whole config: a new field in
    an unrelated section must not throw the cached weights away), the suite format, and the
    versions of timm and torch (their inits and kernels change the weights).
    """
    config = source_config(spec)
    return content_key(
        {
            "format": SUITE_FORMAT,
            **{part: getattr(config, part).model_dump(mode="json") for part in _KEYED},
            "timm": timm.__version__,
            "torch": torch.__version__,
        }
    )


def make_colour_blind(state: dict[str, torch.Tensor], first_conv: str) -> dict[str, torch.Tensor]:
    """Replace the three input-channel slices of the stem's filters by their mean.

    On grey inputs (R = G = B) every filter's response is unchanged; on coloured inputs the
    network sees only the brightness ``(R + G + B) / 3``. For a model trained on grey images
    this removes exactly the part of the stem that training never touched.

    Args:
        state: a state dict; not modified.
        first_conv: the stem convolution's module name (timm's ``pretrained_cfg
            ['first_conv']``, e.g. ``"conv1.0"``).

    Returns:
        A new state dict with the stem weight replaced.

    Raises:
        ModelError: no 4-d weight with 3 input channels under ``first_conv``.
    """
    key = f"{first_conv}.weight"
    weight = state.get(key)
    if weight is None or weight.ndim != 4 or weight.shape[1] != 3:
        raise ModelError(
            f"the stem convolution {key!r} must be a 4-d weight with 3 input channels to make "
            f"the source colour-blind, got {None if weight is None else tuple(weight.shape)}."
        )
    blind = dict(state)
    blind[key] = weight.mean(dim=1, keepdim=True).expand_as(weight).clone()
    return blind


def _first_conv(model_name: str) -> str:
    first = timm.create_model(model_name, pretrained=False).pretrained_cfg.get("first_conv")
    if not isinstance(first, str):
        raise ModelError(f"{model_name} names no single first convolution in its pretrained_cfg.")
    return first


def _evaluate_checkpoint(config: ExperimentConfig, checkpoint: Path) -> tuple[float, float]:
    """Validation and test accuracy of a source checkpoint on the source data, as is."""
    from nonbinary_ft.models.loading import create_backbone
    from nonbinary_ft.training.loop import Precision, evaluate
    from nonbinary_ft.training.trial import prepare_data

    model_cfg = config.model.model_copy(
        update={"pretrained": "checkpoint", "checkpoint": checkpoint}
    )
    model = create_backbone(model_cfg, None)
    data = prepare_data(config, model)
    precision = Precision.for_device(torch.device("cpu"), amp=False, channels_last=False)
    accuracies = []
    for split in (data.val, data.test):
        loader = torch.utils.data.DataLoader(split, batch_size=64)
        accuracies.append(evaluate(model, loader, precision).accuracy)
    return accuracies[0], accuracies[1]


def pretrain_source(spec: SuiteSpec, cache_dir: str | Path) -> SourceModel:
    """Pre-train the source, make a grey-trained one colour-blind, cache the checkpoint.

    A second call with the same spec (and the same timm and torch) reads the cache.

    Args:
        spec: the suite's sizes and budgets.
        cache_dir: the cache root; the checkpoint goes to
            ``cache_dir/transfer_suite/<key>/source.pt`` with a ``source.json`` beside it.

    Raises:
        ConfigError, ModelError, DataError: a spec that cannot be built or trained.
        RuntimeError: the pre-training diverged (the spec's ``source_lr`` is too high).
    """
    from nonbinary_ft.training.trial import load_checkpoint, run_trial

    key = source_key(spec)
    folder = Path(cache_dir) / "transfer_suite" / key
    checkpoint, meta_path = folder / "source.pt", folder / "source.json"
    if checkpoint.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        logger.info("transfer suite: source cache hit %s", key)
        return SourceModel(
            checkpoint, key, meta["val_accuracy"], meta["test_accuracy"], 0.0, cache_hit=True
        )

    config = source_config(spec)
    logger.info("transfer suite: pre-training the source %s (%s)", spec.model, key)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="source-run-", dir=folder))
    try:
        result = run_trial(config, lambda metrics, path: None, workdir)
        if result.status != "completed":
            raise RuntimeError(
                f"pre-training the transfer suite's source diverged at lr {spec.source_lr}; "
                "lower SuiteSpec.source_lr."
            )
        trained = load_checkpoint(workdir / "checkpoint")["model"]
    finally:
        # Only the model's weights are kept, not the run's optimiser state and history.
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    # Only a grey-trained stem has an untrained chroma part to remove.
    if spec.source_colour_mode == "grey":
        trained = make_colour_blind(trained, _first_conv(spec.model))
    # Unique names, renamed into place: two processes building the same source at once
    # (a test run beside a benchmark) never read each other's half-written files.
    partial = folder / f"source.{os.getpid()}.pt.partial"
    torch.save(trained, partial)
    val, test = _evaluate_checkpoint(config, partial)
    meta = {
        "key": key,
        # The spec's fields that decide the source (targets built on it may differ).
        "spec": {
            name: value
            for name, value in asdict(spec).items()
            if name.startswith("source_") or name in ("model", "image_size", "seed")
        },
        "val_accuracy": val,
        "test_accuracy": test,
        # As trained: before blinding, for a grey source.
        "val_accuracy_as_trained": result.history[-1].val_accuracy,
        "train_seconds": seconds,
    }
    meta_partial = folder / f"source.{os.getpid()}.json.partial"
    meta_partial.write_text(json.dumps(meta, indent=2))
    meta_partial.replace(meta_path)
    # The checkpoint last: a run killed before this point leaves no checkpoint to trust.
    partial.replace(checkpoint)
    logger.info("transfer suite: source val accuracy %.3f, %.1f s", val, seconds)
    return SourceModel(checkpoint, key, val, test, seconds, cache_hit=False)


def build_suite(
    size: SuiteSize, cache_dir: str | Path, *, seed: int | None = None
) -> TransferSuite:
    """Build the controlled transfer suite (see the module docstring).

    Args:
        size: ``"small"`` (for tests: under a minute on two CPU cores when not cached) or
            ``"full"`` (for the benchmarks: a few minutes).
        cache_dir: where the source checkpoint and the targets' features are cached.
        seed: another generator seed (new source images, source weights and targets), to
            check that the construction rather than one draw of it carries a result;
            default: the size's own (0).

    Returns:
        The :class:`TransferSuite`, its targets ready for
        :func:`~nonbinary_ft.analysis.analyse` or :func:`compare_regimes`.

    Raises:
        ConfigError: an unknown size.
        RuntimeError: the source's pre-training diverged.
    """
    spec = _spec(size)
    if seed is not None:
        spec = replace(spec, seed=seed)
    # Absolute: Ray runs each trial in its own folder, where a relative checkpoint is lost.
    source = pretrain_source(spec, Path(cache_dir).resolve())
    return TransferSuite(
        size=size,
        spec=spec,
        source=source,
        near=target_config(spec, "near", source.checkpoint, cache_dir),
        far=target_config(spec, "far", source.checkpoint, cache_dir),
    )
