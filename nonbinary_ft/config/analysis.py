"""The ``analysis`` section: how the fit of the pre-trained weights to the target is measured.

The fixed-feature probe, the from-scratch baseline, the transferability scores and the
thresholds of the regime rule (``nbft recommend`` and the sweep's stage 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from nonbinary_ft.config.base import AbsolutePath, FrozenModel, NonNegativeFloat, PositiveFloat
from nonbinary_ft.config.sections import DataConfig

__all__ = ["ProbeConfig", "ScratchConfig", "AnalysisConfig"]


class ProbeConfig(FrozenModel):
    """The linear classifier on frozen features (fixed-feature accuracy) and its own search."""

    weight_decays: tuple[NonNegativeFloat, ...] = Field(
        (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0),
        min_length=1,
        description="L2 strengths tried, on the mean cross-entropy of standardised features "
        "(scikit-learn's C = 1 / (weight decay * N)); the one with the best validation "
        "accuracy wins, ties to the stronger. 0 has no optimum when the classes are "
        "separable, as they usually are with fewer images than feature dimensions.",
    )
    max_iter: int = Field(
        200,
        ge=1,
        description="Most L-BFGS iterations per weight decay (each a convex problem, started "
        "from the previous, stronger one's solution).",
    )
    tol: PositiveFloat = Field(
        1e-5,
        description="A fit stops when no entry of the loss's gradient exceeds this. The loss "
        "is a mean, so the gradient starts at O(1); scikit-learn's default is 1e-4.",
    )


class ScratchConfig(FrozenModel):
    """The from-scratch baseline: the full model from random init, with its own budget."""

    enabled: bool = Field(
        True, description="Train the baseline (expensive); off: decide on the cheap evidence."
    )
    epochs: int = Field(10, ge=1, description="Training epochs of the from-scratch run.")
    image_size: int | None = Field(
        None, gt=0, description="Input side for the from-scratch run; default: model.image_size."
    )
    lr: PositiveFloat | None = Field(
        None,
        description="Learning rate of the from-scratch run; default: settings.lr_high "
        "(random init usually wants a higher one, e.g. 0.1 with SGD).",
    )
    val_accuracy: float | None = Field(
        None,
        ge=0,
        le=1,
        description="A from-scratch validation accuracy measured before (same data and "
        "splits); when set, nothing is trained.",
    )
    test_accuracy: float | None = Field(
        None, ge=0, le=1, description="Its test accuracy, if known (reported only)."
    )


class AnalysisConfig(FrozenModel):
    """How well the pre-trained weights fit the target: features, probe, scores, regime."""

    cache_dir: AbsolutePath = Field(
        Path(".nbft-cache"),
        validate_default=True,
        description="Where extracted features are cached, under a content key of the "
        "backbone, its weights, the data and the transform.",
    )
    batch_size: int = Field(64, ge=1, description="Batch size of feature extraction.")
    source_sample: DataConfig | None = Field(
        None,
        description="A sample of the SOURCE data set, for the EMD domain similarity (without "
        "it EMD is not computed): a data config, or the path of an image folder laid out "
        "root/train/<class>/<image> (e.g. a few ImageNet images per class).",
    )
    scores: tuple[str, ...] | None = Field(
        None, description="Transferability scores to compute; default: every registered one."
    )
    score_max_samples: int | None = Field(
        5000,
        ge=2,
        description="Compute scores on at most this many training images (a stratified, "
        "seeded subsample): RSA and TwoNN grow with the square of N.",
    )
    gap_margin: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="|scratch - fixed| accuracy below this leaves the regime 'unclear'.",
    )
    fisher_threshold: PositiveFloat = Field(
        1.25,
        description="Normalised Fisher score above which the weights provisionally fit well "
        "(between the paper's 1.18 for Cars and 1.35 for Caltech; weak evidence).",
    )
    fisher_margin: NonNegativeFloat = Field(
        0.05, description="Fisher scores within this of the threshold leave it 'unclear'."
    )
    probe: ProbeConfig = Field(
        default_factory=ProbeConfig, description="The fixed-feature linear classifier."
    )
    scratch: ScratchConfig = Field(
        default_factory=ScratchConfig, description="The from-scratch baseline."
    )
    in_sweep: bool = Field(
        True,
        description="nbft sweep starts the analysis actor (stage 1), whose evidence the report "
        "gives (and with search 'nbft' picks the first trials; with analysis.veto, prunes); "
        "false: no evidence in the sweep.",
    )
    when: Literal["auto", "with_search", "after_search"] = Field(
        "auto",
        description="When nbft sweep runs stage 1 on its one trial's share: 'with_search' (from "
        "the start, beside the first trials), 'after_search' (beside stage 3's re-runs: the "
        "first trials get every worker and no trial waits for it) or 'auto' (with the search "
        "when the search uses the evidence, i.e. search 'nbft' or analysis.veto; else after "
        "it).",
    )
    veto: bool = Field(
        False,
        description="Rule out the settings that go against the regime on table 7's rows. Off "
        "by default: the replay benchmark found the veto cost more compute than it saved.",
    )
    prune_on_provisional: bool = Field(
        False,
        description="Also prune on a provisional regime (Fisher score only, before the "
        "from-scratch gap is known): the paper found Fisher a weak predictor.",
    )
    prune_min_rows: int = Field(
        2,
        ge=1,
        le=3,
        description="A setting is pruned when it goes against the regime on at least this "
        "many of table 7's rows (more layers re-initialised, L2-SP, low layers at a low LR). "
        "The paper's own optima each went against one row at most; 1 prunes hardest.",
    )

    @model_validator(mode="before")
    @classmethod
    def _folder_as_source_sample(cls, data: Any) -> Any:
        # A bare path is shorthand for an image folder of source images, the usual case.
        if isinstance(data, dict) and isinstance(data.get("source_sample"), (str, Path)):
            folder = {"kind": "imagefolder", "root": data["source_sample"]}
            data = {**data, "source_sample": folder}
        return data
