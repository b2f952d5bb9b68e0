"""Layer maps of real architectures (built with pretrained=False) and the layer plan."""

from __future__ import annotations

import logging

import pytest
import timm
import torch

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.models.layers import build_layer_map, count_layers, plan_layers

# (model, number of layers, label of the layer below the head, label of the head)
ARCHITECTURES = [
    ("resnet50", 18, "layer4.2", "fc"),
    ("inception_v4", 21, "features.21", "last_linear"),
    ("tf_efficientnet_lite0", 18, "blocks.6.0.conv_pw .. bn2", "classifier"),
    ("vit_small_patch16_224", 14, "blocks.11.norm1 .. norm", "head"),
    ("convnext_tiny", 20, "stages.3.blocks.2", "head"),
]


@pytest.fixture(scope="module", params=ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def architecture(request):
    name, count, below_head, head = request.param
    model = timm.create_model(name, pretrained=False)
    return model, build_layer_map(model, name), count, below_head, head


def test_layer_count_and_top_layers(architecture):
    model, layer_map, count, below_head, head = architecture
    assert len(layer_map) == count
    assert layer_map.grouping == "group_matcher"
    assert layer_map.layers[-1].label == head
    assert layer_map.layers[-2].label == below_head
    assert [layer.index for layer in layer_map.layers] == list(range(1, count + 1))


def test_every_parameter_in_exactly_one_layer(architecture):
    model, layer_map, *_ = architecture
    names = [n for layer in layer_map.layers for n in layer.param_names]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert sum(layer.num_params for layer in layer_map.layers) == sum(
        p.numel() for p in model.parameters()
    )


def test_layers_run_bottom_to_top(architecture):
    """The stem holds the first parameter, the head the classifier."""
    model, layer_map, *_ = architecture
    first = next(iter(dict(model.named_parameters())))
    assert layer_map.layer_of(first) == 1
    classifier = model.pretrained_cfg["classifier"]
    assert layer_map.layer_of(f"{classifier}.weight") == len(layer_map)


@pytest.mark.parametrize(("name", "count"), [(a[0], a[1]) for a in ARCHITECTURES])
def test_count_layers_without_weights_matches_the_layer_map(name, count):
    assert count_layers(name) == count


def test_count_layers_builds_on_the_cpu_when_meta_tensors_fail(monkeypatch):
    """An architecture that reads tensor values while it is built still gets counted."""
    create = timm.create_model

    def needs_values(*args, **kwargs):
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("Cannot copy out of meta tensor")
        return create(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", needs_values)
    count_layers.cache_clear()
    assert count_layers("test_resnet") == 6


def test_count_layers_rejects_an_unknown_model():
    with pytest.raises(ConfigError) as info:
        count_layers("resnet5O")
    assert info.value.field == "model.name"


def test_inception_v4_matches_the_paper():
    """The paper's unit: 21 layers, layer 2 from the top is the last Inception-C block."""
    model = timm.create_model("inception_v4", pretrained=False)
    layer_map = build_layer_map(model, "inception_v4")
    below_head = layer_map.layers[-2]
    assert all(n.startswith("features.21.") for n in below_head.param_names)
    assert layer_map.layers[0].module_names[0].startswith("features.0")


def test_model_without_group_matcher_warns_and_falls_back(caplog):
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 3))
            self.fc = torch.nn.Linear(4, 2)
            self.pretrained_cfg = {"classifier": "fc"}

    with caplog.at_level(logging.WARNING):
        layer_map = build_layer_map(Plain(), "plain")
    assert layer_map.grouping == "fallback"
    assert "no group_matcher" in caplog.text
    assert len(layer_map) >= 2
    assert layer_map.layer_of("fc.weight") == len(layer_map)


@pytest.fixture(scope="module")
def resnet_map():
    return build_layer_map(timm.create_model("test_resnet", pretrained=False), "test_resnet")


def test_plan_roles(resnet_map):
    settings = TrialSettings(reinit_layers=2, low_layers=2, lr_low=0.001, l2sp_layers=3)
    plan = plan_layers(resnet_map, settings)  # 6 layers
    assert [plan.lr_group(i) for i in range(1, 7)] == ["low", "low", "high", "high", "new", "new"]
    assert [plan.uses_l2sp(i) for i in range(1, 7)] == [True, True, True, False, False, False]
    all_l2sp = plan_layers(resnet_map, TrialSettings(reinit_layers=1, l2sp_layers="all"))
    assert [all_l2sp.uses_l2sp(i) for i in range(1, 7)] == [True] * 5 + [False]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (dict(reinit_layers=6), "settings.reinit_layers"),
        (dict(reinit_layers=2, low_layers=5, lr_low=0.01), "settings.low_layers"),
        (dict(reinit_layers=3, l2sp_layers=4), "settings.l2sp_layers"),
    ],
)
def test_plan_rejects_settings_beyond_the_layer_count(resnet_map, settings, field):
    with pytest.raises(ConfigError) as info:
        plan_layers(resnet_map, TrialSettings(**settings))
    assert info.value.field == field
    assert "test_resnet" in str(info.value)
