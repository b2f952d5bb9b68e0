"""Re-initialise the top k layers of a model with the architecture's own initialisation.

timm models initialise themselves in their constructors with schemes that differ per block
(trunc-normal for ViTs, fan-out for ResNets, zero-init of last norms...). Rather than
re-implementing each, a fresh ``pretrained=False`` copy of the same architecture is built
and the chosen layers' parameters and buffers (e.g. batch-norm statistics) are copied from it.
"""

from __future__ import annotations

import timm
import torch

from nonbinary_ft.models.layers import LayerMap, LayerPlan

__all__ = ["reinit_top_layers", "layer_state_names"]


def _owner_module(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def layer_state_names(model: torch.nn.Module, layer_map: LayerMap, first_layer: int) -> list[str]:
    """Names of the parameters and buffers of layers ``first_layer .. L``."""
    names = [name for layer in layer_map.layers[first_layer - 1 :] for name in layer.param_names]
    for name, _ in model.named_buffers():
        owner = layer_map.owner_layer_of_module(_owner_module(name))
        if owner is not None and owner >= first_layer:
            names.append(name)
    return names


@torch.no_grad()
def reinit_top_layers(
    model: torch.nn.Module, layer_map: LayerMap, plan: LayerPlan, seed: int
) -> list[str]:
    """Re-initialise the plan's top layers in place, copying them from a fresh model.

    Args:
        model: the loaded model (its head already sized for the target).
        layer_map: the model's layer map.
        plan: the trial's layer plan (``plan.first_reinit .. L`` are re-initialised).
        seed: seeds the fresh model's initialisation, so a trial is reproducible.

    Returns:
        The names of the parameters and buffers that were re-initialised.
    """
    architecture = model.pretrained_cfg.get("architecture") or layer_map.model_name
    devices = torch.cuda.device_count() and [torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices or []):
        torch.manual_seed(seed)
        fresh = timm.create_model(
            architecture, pretrained=False, num_classes=model.num_classes
        ).state_dict()
    names = layer_state_names(model, layer_map, plan.first_reinit)
    own = model.state_dict()
    for name in names:
        own[name].copy_(fresh[name])
    return names
