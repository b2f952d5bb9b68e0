"""Re-initialising the top k layers: below untouched bit for bit, inside all changed."""

from __future__ import annotations

import pytest
import timm
import torch

from nonbinary_ft.config import ModelConfig, TrialSettings
from nonbinary_ft.models.layers import build_layer_map, plan_layers
from nonbinary_ft.models.loading import create_backbone
from nonbinary_ft.models.surgery import reinit_top_layers


def _load_perturbed(name, tmp_path):
    """A model loaded from a checkpoint whose every tensor differs from any fresh init."""
    torch.manual_seed(0)
    source = timm.create_model(name, pretrained=False, num_classes=4)
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor) + 0.5)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    config = ModelConfig(name=name, pretrained="checkpoint", checkpoint=tmp_path / "w.pt")
    model = create_backbone(config, num_classes=4)
    return name, model, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(params=["test_resnet", "test_efficientnet", "test_vit"])
def loaded(request, tmp_path):
    return _load_perturbed(request.param, tmp_path)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_reinit_changes_exactly_the_top_k_layers(loaded, k):
    name, model, before = loaded
    layer_map = build_layer_map(model, name)
    plan = plan_layers(layer_map, TrialSettings(reinit_layers=k))
    names = set(reinit_top_layers(model, layer_map, plan, seed=0))
    after = model.state_dict()
    top = {n for layer in layer_map.layers[-k:] for n in layer.param_names}
    assert top <= names
    for key, value in after.items():
        if key in names:
            if value.is_floating_point():
                assert not torch.equal(value, before[key]), f"{key} was not re-initialised"
        else:
            assert torch.equal(value, before[key]), f"{key} below the top {k} layers changed"
    # Parameters below the re-initialised layers: bitwise equal to the loaded weights.
    below = {n for layer in layer_map.layers[:-k] for n in layer.param_names}
    assert below.isdisjoint(names)


def test_reinit_uses_the_architectures_own_init(loaded):
    """The re-initialised head equals the head of a fresh model built with the same seed."""
    name, model, _ = loaded
    layer_map = build_layer_map(model, name)
    plan = plan_layers(layer_map, TrialSettings(reinit_layers=2))
    reinit_top_layers(model, layer_map, plan, seed=123)
    torch.manual_seed(123)
    fresh = timm.create_model(name, pretrained=False, num_classes=4).state_dict()
    for param in layer_map.layers[-2].param_names + layer_map.layers[-1].param_names:
        assert torch.equal(model.state_dict()[param], fresh[param])


def test_reinit_moves_batch_norm_statistics_with_their_layer(tmp_path):
    name, model, before = _load_perturbed("test_resnet", tmp_path)
    layer_map = build_layer_map(model, name)
    plan = plan_layers(layer_map, TrialSettings(reinit_layers=2))
    names = reinit_top_layers(model, layer_map, plan, seed=0)
    stats = [n for n in names if n.endswith("running_mean")]
    assert stats and all(n.startswith("layer4.") for n in stats)
    assert all(torch.equal(model.state_dict()[n], torch.zeros_like(before[n])) for n in stats)


def test_reinit_does_not_disturb_the_global_random_state(loaded):
    name, model, _ = loaded
    layer_map = build_layer_map(model, name)
    plan = plan_layers(layer_map, TrialSettings(reinit_layers=1))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    reinit_top_layers(model, layer_map, plan, seed=99)
    assert torch.equal(torch.rand(3), expected)
