"""The from-scratch baseline: the full model trained from random init on the target.

Its accuracy minus the fixed-feature accuracy is the paper's best predictor of how well the
pre-trained weights fit (section 4.6). It is a whole training run, so it has its own budget
(``analysis.scratch``), can be switched off, and can be given instead of trained (a result
from an earlier run, or from a trial the sweep scheduled).

Like the features, a finished run is cached under a content key of everything that decides
its outcome (the from-scratch recipe, the data and its images, the torch and timm versions),
so a second ``nbft recommend`` or sweep on the same target does not train it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import timm
import torch

from nonbinary_ft.analysis.cache import (
    cache_folder,
    content_key,
    load_document,
    samples_fingerprint,
    save_document,
)
from nonbinary_ft.config import ExperimentConfig, TrialSettings
from nonbinary_ft.data import DataSplits, read_samples
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.results.schema import EpochRecord
from nonbinary_ft.vocabulary import TrialStatus

__all__ = [
    "ScratchResult",
    "scratch_config",
    "scratch_baseline",
    "scratch_key",
    "given_scratch",
]

logger = logging.getLogger(__name__)

# Bumped whenever the from-scratch run's training changes meaning: old entries then miss.
SCRATCH_CACHE_FORMAT = 1

# Fields that decide where or how fast a run goes, never what it learns. Mixed precision
# and the memory layout do change the numbers in the last digits, as the device does; a
# cached run stands for the same measurement.
_RUN_FIELDS_WITHOUT_EFFECT = {
    "name": True,
    "train": {"device", "amp", "channels_last", "test_every_epoch"},
    "data": {"num_workers", "download", "eval_batch_size"},
    "analysis": True,
    "sweep": True,
}


@dataclass(frozen=True)
class ScratchResult:
    """The from-scratch accuracy, or why there is none.

    Attributes:
        val_accuracy: best validation accuracy over the epochs (the regime compares it with
            the probe's validation accuracy, itself the best of a search); ``None`` when
            the run diverged.
        test_accuracy: test accuracy after the last epoch, if known (reported only: no
            decision looks at test).
        status: ``"completed"``, ``"diverged"`` or ``"given"`` (not trained here).
        epochs, lr, image_size: the budget it was trained with (``None`` when given).
        curve: every epoch of the run (none when given): the gap at a smaller budget.
    """

    val_accuracy: float | None
    test_accuracy: float | None
    status: Literal["completed", "diverged", "given"]
    epochs: int | None = None
    lr: float | None = None
    image_size: int | None = None
    curve: tuple[EpochRecord, ...] = field(default=(), repr=False)

    @property
    def usable(self) -> bool:
        """Whether the accuracy can enter the gap (a diverged run says nothing about it)."""
        return self.val_accuracy is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the curve as one reported dict per epoch)."""
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        document["curve"] = [record.to_report() for record in self.curve]
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ScratchResult:
        """The inverse of :meth:`to_dict`."""
        curve = tuple(EpochRecord.from_report(item) for item in document.get("curve") or ())
        fields = {name: document.get(name) for name in cls.__dataclass_fields__}
        return cls(**{**fields, "curve": curve})


def given_scratch(val_accuracy: float, test_accuracy: float | None = None) -> ScratchResult:
    """A from-scratch result measured elsewhere (same data and splits).

    Raises:
        ConfigError: an accuracy outside [0, 1].
    """
    for name, value in (("val_accuracy", val_accuracy), ("test_accuracy", test_accuracy)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"analysis.scratch.{name}", "an accuracy in [0, 1]", value)
    return ScratchResult(val_accuracy, test_accuracy, "given")


def scratch_config(config: ExperimentConfig) -> ExperimentConfig:
    """The experiment as a from-scratch run: random init, head only, one LR, plain L2.

    The model's image size, the epochs and the LR come from ``analysis.scratch`` where set;
    L2 strength (``settings.beta``), data and the rest of the recipe stay the experiment's.
    """
    scratch = config.analysis.scratch
    model = config.model.model_copy(
        update={
            "pretrained": "none",
            "checkpoint": None,
            "image_size": scratch.image_size or config.model.image_size,
        }
    )
    settings = TrialSettings(
        reinit_layers=1,
        lr_high=scratch.lr or config.settings.lr_high,
        low_layers=0,
        l2sp_layers=0,
        alpha=config.settings.alpha,
        beta=config.settings.beta,
    )
    train = config.train.model_copy(update={"epochs": scratch.epochs})
    return config.model_copy(
        update={
            "name": f"{config.name}-scratch",
            "model": model,
            "train": train,
            "settings": settings,
        }
    )


def scratch_baseline(
    config: ExperimentConfig, workdir: str | Path, data: DataSplits | None = None
) -> ScratchResult:
    """Train the full model from random init with ``analysis.scratch``'s budget, or read
    the run from the cache (``analysis.cache_dir/scratch``) when it was trained before.

    Args:
        config: the experiment.
        workdir: where the run keeps its checkpoint (``workdir/checkpoint``).
        data: already-built splits with the scratch run's transforms; default: built here.

    Raises:
        ConfigError, ModelError, DataError: bad input (a cache folder that cannot be written
            included), before any training step.
    """
    run = scratch_config(config)
    path = cache_folder(config.analysis.cache_dir, "scratch") / f"{scratch_key(run)}.json"
    cached = load_document(path)
    if cached is not None:
        logger.info("scratch: cache hit %s", path.stem)
        return ScratchResult.from_dict(cached)
    result = _train(run, workdir, data)
    if result.status == "completed":  # a diverged run may be bad luck: not remembered
        save_document(path, result.to_dict())
        logger.info("scratch: cached %s (%s)", path.stem, path)
    return result


def scratch_key(run: ExperimentConfig) -> str:
    """The content key of a from-scratch run (:func:`scratch_config`'s experiment)."""
    samples = read_samples(run.data)
    return content_key(
        {
            "format": SCRATCH_CACHE_FORMAT,
            "run": run.model_dump(mode="json", exclude=_RUN_FIELDS_WITHOUT_EFFECT),
            "images": {
                name: samples_fingerprint(getattr(samples, name))
                for name in ("train", "val", "test")
            },
            "versions": {"torch": torch.__version__.split("+")[0], "timm": timm.__version__},
        }
    )


def _train(run: ExperimentConfig, workdir: str | Path, data: DataSplits | None) -> ScratchResult:
    # Imported here: the training stack is heavy and not needed for the cheap evidence.
    from nonbinary_ft.training.trial import run_trial

    def log_epoch(record: EpochRecord, checkpoint: Path | None) -> None:
        logger.info(
            "scratch epoch %d: train acc %.3f, val acc %.3f",
            record.epoch,
            record.train_accuracy,
            record.val_accuracy if record.val_accuracy is not None else float("nan"),
        )

    logger.info(
        "scratch: training %s from random init for %d epochs at lr %g",
        run.model.name,
        run.train.epochs,
        run.settings.lr_high,
    )
    result = run_trial(run, log_epoch, workdir=workdir, data=data)
    if result.status == TrialStatus.DIVERGED:
        logger.warning("scratch: the from-scratch run diverged; the gap stays unknown")
        val, test = None, None
    else:
        val, test = result.best_val_accuracy, result.test_accuracy
    return ScratchResult(
        val_accuracy=val,
        test_accuracy=test,
        status="diverged" if result.status == TrialStatus.DIVERGED else "completed",
        epochs=run.train.epochs,
        lr=run.settings.lr_high,
        image_size=run.model.image_size,
        curve=result.history,
    )
