"""The layer map: a model as an ordered list of layers, bottom (stem, 1) to top (head, L).

A layer is one group of timm's fine-grained ``group_matcher``: the stem is layer 1, the
classifier head layer L (for Inception v4, layer L-1 is the last Inception-C block, the unit
the paper's experiments re-initialise). Models without a ``group_matcher`` fall back to
timm's automatic grouping, with a warning. The
:class:`LayerPlan` then says, for one trial's settings, which layers are re-initialised, which
train at the low or high learning rate, and which decay towards their pre-trained values.
:func:`count_layers` gives the layer count L from the architecture alone, without weights.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Literal

import timm
import torch
from timm.models import group_parameters
from timm.optim._param_groups import auto_group_layers

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.errors import ModelError
from nonbinary_ft.models.loading import check_model_name

__all__ = ["Layer", "LayerMap", "LayerPlan", "build_layer_map", "count_layers", "plan_layers"]

logger = logging.getLogger(__name__)

LrGroup = Literal["new", "high", "low"]


@dataclass(frozen=True)
class Layer:
    """One layer: its 1-based index from the bottom, its parameters and their modules."""

    index: int
    param_names: tuple[str, ...]
    module_names: tuple[str, ...]
    num_params: int
    label: str


@dataclass(frozen=True)
class LayerMap:
    """The ordered layers of a model and a reverse look-up from parameter to layer."""

    model_name: str
    layers: tuple[Layer, ...]
    grouping: Literal["group_matcher", "fallback"]

    def __len__(self) -> int:
        return len(self.layers)

    def layer_of(self, param_name: str) -> int:
        """The 1-based layer index of a parameter.

        Raises:
            ModelError: the parameter is not in the model this map was built from.
        """
        try:
            return self._param_to_layer[param_name]
        except KeyError:
            raise ModelError(
                f"Parameter '{param_name}' is not in the layer map of {self.model_name}: "
                "build the layer map from the same model instance that is trained."
            ) from None

    @property
    def _param_to_layer(self) -> dict[str, int]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = {name: layer.index for layer in self.layers for name in layer.param_names}
            object.__setattr__(self, "_cache", cached)
        return cached

    def owner_layer_of_module(self, module_name: str) -> int | None:
        """The layer of the parameters owned directly by ``module_name`` (None if it owns none).

        Used to place buffers (e.g. batch-norm running statistics) with their layer.
        """
        for layer in self.layers:
            if module_name in layer.module_names:
                return layer.index
        return None


def _owner_module(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else ""


def _common_prefix(names: tuple[str, ...]) -> str:
    paths = [name.split(".") for name in names]
    common: list[str] = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


def _labels(module_groups: list[tuple[str, ...]]) -> list[str]:
    """Name each layer by the module that holds all of it and nothing of another layer."""
    labels = []
    for index, modules in enumerate(module_groups):
        prefix = _common_prefix(modules) if all(modules) else ""
        others = (m for i, group in enumerate(module_groups) if i != index for m in group)
        if prefix and not any(m == prefix or m.startswith(prefix + ".") for m in others):
            labels.append(prefix)
        else:
            shown = [m or "(root)" for m in modules]
            labels.append(shown[0] if len(shown) == 1 else f"{shown[0]} .. {shown[-1]}")
    return labels


def build_layer_map(model: torch.nn.Module, model_name: str | None = None) -> LayerMap:
    """Group a model's parameters into ordered layers with timm's fine-grained matcher.

    Args:
        model: a timm model (any ``nn.Module`` works through the fallback grouping).
        model_name: name shown in tables and errors; default: the model's class name.
    """
    name = (
        model_name or getattr(model, "default_cfg", {}).get("architecture") or type(model).__name__
    )
    if hasattr(model, "group_matcher"):
        groups = group_parameters(model, model.group_matcher(coarse=False))
        grouping: Literal["group_matcher", "fallback"] = "group_matcher"
    else:
        logger.warning(
            "%s has no group_matcher(); using timm's automatic layer grouping, whose layers "
            "may not match the architecture's blocks.",
            name,
        )
        reverse = auto_group_layers(model)
        groups = {}
        for param_name, layer_id in reverse.items():
            groups.setdefault(layer_id, []).append(param_name)
        grouping = "fallback"
    params = dict(model.named_parameters())
    names_per_layer = [tuple(groups[group_id]) for group_id in sorted(groups)]
    modules_per_layer = [
        tuple(dict.fromkeys(_owner_module(n) for n in names)) for names in names_per_layer
    ]
    layers = [
        Layer(
            index=index,
            param_names=names,
            module_names=modules,
            num_params=sum(params[n].numel() for n in names),
            label=label,
        )
        for index, (names, modules, label) in enumerate(
            zip(names_per_layer, modules_per_layer, _labels(modules_per_layer), strict=True),
            start=1,
        )
    ]
    return LayerMap(model_name=name, layers=tuple(layers), grouping=grouping)


@functools.cache
def count_layers(model_name: str) -> int:
    """The number of layers L of a timm model, from its architecture alone (cached per name).

    The model is built on PyTorch's ``meta`` device: its parameters have shapes but no storage
    and no initialisation, so a ViT-B counts in a tenth of a second instead of seconds. The
    count does not depend on the weights or the number of classes (the head is one layer).

    Raises:
        ConfigError: an unknown model name.
    """
    check_model_name(model_name)
    try:
        with torch.device("meta"):
            model = timm.create_model(model_name, pretrained=False)
    except (NotImplementedError, RuntimeError):
        # An architecture that reads tensor values while it is built cannot use meta tensors.
        logger.debug("%s cannot be built on the meta device; building it on the CPU", model_name)
        model = timm.create_model(model_name, pretrained=False)
    return len(build_layer_map(model, model_name))


@dataclass(frozen=True)
class LayerPlan:
    """Roles of the layers for one trial (1-based, inclusive bounds).

    Layers ``L-k+1 .. L`` are re-initialised (LR ``lr_new``), ``1 .. n`` train at ``lr_low``,
    the rest of the transferred layers at ``lr_high``; ``1 .. m`` decay towards their
    pre-trained values (L2-SP), every other regularised weight towards zero (L2).
    """

    num_layers: int
    reinit_layers: int
    low_layers: int
    l2sp_layers: int

    @property
    def first_reinit(self) -> int:
        """Index of the lowest re-initialised layer."""
        return self.num_layers - self.reinit_layers + 1

    def lr_group(self, layer_index: int) -> LrGroup:
        """Which learning rate a layer trains at."""
        if layer_index >= self.first_reinit:
            return "new"
        return "low" if layer_index <= self.low_layers else "high"

    def uses_l2sp(self, layer_index: int) -> bool:
        """Whether a layer decays towards its pre-trained values rather than towards zero."""
        return layer_index <= self.l2sp_layers and layer_index < self.first_reinit


def plan_layers(layer_map: LayerMap, settings: TrialSettings) -> LayerPlan:
    """Check the settings against the model's layer count and assign layer roles.

    Raises:
        ConfigError: k, n or m out of range for this model (the message names the setting).
    """
    num_layers = len(layer_map)
    settings.fit_to(num_layers, model_name=layer_map.model_name)
    return LayerPlan(
        num_layers=num_layers,
        reinit_layers=settings.reinit_layers,
        low_layers=settings.low_layers,
        l2sp_layers=settings.num_l2sp_layers(num_layers),
    )
