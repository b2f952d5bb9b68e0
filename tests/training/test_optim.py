"""Param groups, optimiser and LR schedule (nonbinary_ft.training.optim)."""

from __future__ import annotations

import math

import pytest
import timm
import torch

from nonbinary_ft.config import TrainConfig, TrialSettings
from nonbinary_ft.errors import ModelError
from nonbinary_ft.models.layers import build_layer_map, plan_layers
from nonbinary_ft.training.optim import (
    build_param_groups,
    create_optimizer,
    create_scheduler,
    lr_multiplier,
)

LRS = {"low": 0.001, "high": 0.01, "new": 0.1}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, num_classes=5)


@pytest.fixture(scope="module")
def layer_map(model):
    return build_layer_map(model, "test_resnet")


def _settings(**overrides) -> TrialSettings:
    values = dict(
        reinit_layers=2, low_layers=2, lr_low=LRS["low"], lr_high=LRS["high"], lr_new=LRS["new"]
    )
    return TrialSettings(**{**values, **overrides})


def _groups(model, layer_map, settings):
    plan = plan_layers(layer_map, settings)
    return build_param_groups(model, layer_map, plan, settings)


def _names_of(model, params) -> set[str]:
    by_id = {id(p): name for name, p in model.named_parameters()}
    return {by_id[id(p)] for p in params}


def _layer_names(layer_map, indices) -> set[str]:
    """Parameter names of the given 1-based layers, straight from the layer map."""
    return {n for layer in layer_map.layers if layer.index in indices for n in layer.param_names}


# --- param groups -----------------------------------------------------------------------------


def test_each_group_holds_exactly_its_layers_at_its_lr(model, layer_map):
    num_layers = len(layer_map)
    assert num_layers == 6  # the role boundaries below are written for test_resnet's 6 layers
    groups = _groups(model, layer_map, _settings())

    expected = {
        "low": _layer_names(layer_map, {1, 2}),
        "high": _layer_names(layer_map, set(range(3, num_layers - 1))),  # layers 3, 4
        "new": _layer_names(layer_map, {num_layers - 1, num_layers}),  # top k=2: 5, 6
    }
    assert [g["name"] for g in groups] == ["low", "high", "new"]
    for group in groups:
        assert _names_of(model, group["params"]) == expected[group["name"]]
        assert group["lr"] == LRS[group["name"]]
        assert group["weight_decay"] == 0.0


def test_every_parameter_in_exactly_one_group_in_model_order(model, layer_map):
    groups = _groups(model, layer_map, _settings())
    grouped = [id(p) for group in groups for p in group["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}
    order = {id(p): i for i, p in enumerate(model.parameters())}
    for group in groups:
        positions = [order[id(p)] for p in group["params"]]
        assert positions == sorted(positions)


def test_group_without_parameters_is_omitted_and_lr_new_defaults_to_lr_high(model, layer_map):
    settings = TrialSettings(reinit_layers=1, lr_high=0.02)
    groups = _groups(model, layer_map, settings)
    assert [g["name"] for g in groups] == ["high", "new"]
    assert {g["name"]: g["lr"] for g in groups} == {"high": 0.02, "new": 0.02}
    assert _names_of(model, groups[1]["params"]) == _layer_names(layer_map, {len(layer_map)})


def test_frozen_parameters_are_left_out():
    model = timm.create_model("test_resnet", pretrained=False, num_classes=5)
    layer_map = build_layer_map(model)
    stem = _layer_names(layer_map, {1})
    for name, param in model.named_parameters():
        param.requires_grad_(name not in stem)
    groups = _groups(model, layer_map, _settings())
    low = next(g for g in groups if g["name"] == "low")
    assert _names_of(model, low["params"]) == _layer_names(layer_map, {2})


def test_parameter_missing_from_layer_map_is_a_model_error(model, layer_map):
    other = timm.create_model("test_efficientnet", pretrained=False, num_classes=5)
    settings = _settings()
    with pytest.raises(ModelError, match="not in the layer map"):
        build_param_groups(other, layer_map, plan_layers(layer_map, settings), settings)


# --- optimiser --------------------------------------------------------------------------------


def test_sgd_with_nesterov_momentum_and_no_weight_decay(model, layer_map):
    groups = _groups(model, layer_map, _settings())
    groups[0]["weight_decay"] = 0.5  # a caller's decay must not survive: the penalty decays
    optimizer = create_optimizer(groups, TrainConfig(momentum=0.8, nesterov=True))
    assert type(optimizer) is torch.optim.SGD
    for group in optimizer.param_groups:
        assert group["momentum"] == 0.8
        assert group["nesterov"] is True
        assert group["weight_decay"] == 0.0
    assert [g["lr"] for g in optimizer.param_groups] == [LRS["low"], LRS["high"], LRS["new"]]


def test_sgd_without_nesterov_and_with_zero_momentum(model, layer_map):
    groups = _groups(model, layer_map, _settings())
    plain = create_optimizer(groups, TrainConfig(nesterov=False))
    assert all(g["nesterov"] is False and g["momentum"] == 0.9 for g in plain.param_groups)
    # torch refuses nesterov with zero momentum; the factory falls back to plain SGD.
    zero = create_optimizer(groups, TrainConfig(momentum=0.0, nesterov=True))
    assert all(g["nesterov"] is False and g["momentum"] == 0.0 for g in zero.param_groups)


def test_adamw_has_no_weight_decay(model, layer_map):
    groups = _groups(model, layer_map, _settings())
    optimizer = create_optimizer(groups, TrainConfig(optimizer="adamw"))
    assert type(optimizer) is torch.optim.AdamW
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0, 0.0]
    assert [g["name"] for g in optimizer.param_groups] == ["low", "high", "new"]


# --- schedule ---------------------------------------------------------------------------------


def _expected_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Written out independently of the implementation: 0.1 -> 1 linearly, then cosine to 0."""
    if step < warmup_steps:
        return 0.1 + 0.9 * step / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def test_cosine_multiplier_key_points():
    train = TrainConfig(epochs=5, warmup_epochs=1, scheduler="cosine")
    spe = 4  # warm-up 4 steps, cosine over the 16 after
    assert lr_multiplier(0, train, spe) == pytest.approx(0.1)
    assert lr_multiplier(2, train, spe) == pytest.approx(0.55)
    assert lr_multiplier(4, train, spe) == pytest.approx(1.0)
    assert lr_multiplier(12, train, spe) == pytest.approx(0.5)
    assert lr_multiplier(20, train, spe) == pytest.approx(0.0)
    assert lr_multiplier(25, train, spe) == pytest.approx(0.0)  # past the end: stays at 0
    for step in range(21):
        assert lr_multiplier(step, train, spe) == pytest.approx(_expected_cosine(step, 4, 20))


def test_no_warmup_starts_at_full_lr():
    train = TrainConfig(epochs=2, warmup_epochs=0, scheduler="cosine")
    assert lr_multiplier(0, train, 3) == pytest.approx(1.0)
    assert lr_multiplier(3, train, 3) == pytest.approx(0.5)


def test_scheduler_keeps_group_ratios_through_warmup_and_cosine(model, layer_map):
    groups = _groups(model, layer_map, _settings())
    optimizer = create_optimizer(groups, TrainConfig())
    train = TrainConfig(epochs=3, warmup_epochs=1, scheduler="cosine")
    spe = 4
    scheduler = create_scheduler(optimizer, train, steps_per_epoch=spe)
    for step in range(3 * spe):
        multiplier = _expected_cosine(step, spe, 3 * spe)
        lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
        for name, lr in lrs.items():
            assert lr == pytest.approx(LRS[name] * multiplier, rel=1e-12), (step, name)
        assert lrs["new"] / lrs["high"] == pytest.approx(LRS["new"] / LRS["high"], rel=1e-12)
        assert lrs["high"] / lrs["low"] == pytest.approx(LRS["high"] / LRS["low"], rel=1e-12)
        optimizer.step()
        scheduler.step()


def test_step_schedule_decays_at_the_right_epochs():
    train = TrainConfig(epochs=10, warmup_epochs=0, scheduler="step", step_every=3, step_gamma=0.1)
    spe = 2
    per_epoch = [lr_multiplier(epoch * spe + 1, train, spe) for epoch in range(10)]
    expected = [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001]
    assert per_epoch == pytest.approx(expected)
    # the decay happens at the first step of epoch 3, not before
    assert lr_multiplier(3 * spe - 1, train, spe) == pytest.approx(1.0)
    assert lr_multiplier(3 * spe, train, spe) == pytest.approx(0.1)


def test_step_schedule_after_warmup_and_constant():
    step = TrainConfig(epochs=6, warmup_epochs=1, scheduler="step", step_every=2, step_gamma=0.5)
    assert lr_multiplier(0, step, 2) == pytest.approx(0.1)
    assert lr_multiplier(1, step, 2) == pytest.approx(0.55)
    assert [lr_multiplier(s, step, 2) for s in (2, 3, 4, 8)] == pytest.approx([1, 1, 0.5, 0.25])
    flat = TrainConfig(epochs=6, warmup_epochs=1, scheduler="constant")
    assert [lr_multiplier(s, flat, 2) for s in (0, 1, 2, 7, 11)] == pytest.approx(
        [0.1, 0.55, 1, 1, 1]
    )


def test_scheduler_state_round_trips(model, layer_map):
    train = TrainConfig(epochs=2, warmup_epochs=1)
    optimizer = create_optimizer(_groups(model, layer_map, _settings()), train)
    scheduler = create_scheduler(optimizer, train, steps_per_epoch=3)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    # The order of a resumed trial: build both afresh, then load both states.
    optimizer2 = create_optimizer(_groups(model, layer_map, _settings()), train)
    scheduler2 = create_scheduler(optimizer2, train, steps_per_epoch=3)
    optimizer2.load_state_dict(optimizer.state_dict())
    scheduler2.load_state_dict(scheduler.state_dict())
    optimizer2.step()
    scheduler2.step()
    expected = LRS["new"] * _expected_cosine(5, 3, 6)
    assert optimizer2.param_groups[-1]["lr"] == pytest.approx(expected)


def test_invalid_steps_per_epoch_is_refused(model, layer_map):
    optimizer = create_optimizer(_groups(model, layer_map, _settings()), TrainConfig())
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1 but got 0"):
        create_scheduler(optimizer, TrainConfig(), steps_per_epoch=0)
    with pytest.raises(ValueError, match="step must be >= 0"):
        lr_multiplier(-1, TrainConfig(), 1)
