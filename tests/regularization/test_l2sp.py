"""The L2-SP / L2 penalty (nonbinary_ft.regularization.l2sp)."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

from nonbinary_ft.config import TrialSettings
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.models.layers import build_layer_map, plan_layers
from nonbinary_ft.regularization import L2SPRegulariser, Penalty

ALPHA = 0.3
BETA = 0.05


def _setup(model_name: str = "test_resnet", **settings):
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=5)
    layer_map = build_layer_map(model, model_name)
    trial = TrialSettings(**{"reinit_layers": 2, "l2sp_layers": 2, **settings})
    return model, layer_map, plan_layers(layer_map, trial)


def _names_in_layers(layer_map, indices, among: set[str] | None = None) -> set[str]:
    """Parameter names of the given 1-based layers, straight from the layer map."""
    names = {n for layer in layer_map.layers if layer.index in indices for n in layer.param_names}
    return names if among is None else names & among


def _decayed(model) -> set[str]:
    """The weights decayed by default: ndim > 1 (biases and norm weights are 1-d)."""
    return {name for name, p in model.named_parameters() if p.ndim > 1}


def _perturb(model, scale: float = 0.1) -> dict[str, torch.Tensor]:
    """Move every weight away from its value now; return the values before (our own w0)."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return before


def _penalty_grads(model, regulariser) -> dict[str, torch.Tensor | None]:
    model.zero_grad(set_to_none=True)
    regulariser.penalty(model).total.backward()
    return {name: p.grad for name, p in model.named_parameters()}


def test_l2sp_set_is_exactly_layers_1_to_m_and_the_rest_is_l2():
    model, layer_map, plan = _setup()
    decayed = _decayed(model)
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    num_layers = len(layer_map)
    assert set(reg.l2sp_names) == _names_in_layers(layer_map, {1, 2}, decayed)
    assert set(reg.l2_names) == _names_in_layers(layer_map, set(range(3, num_layers + 1)), decayed)
    every = {name for name, _ in model.named_parameters()}
    assert set(reg.excluded_names) == every - decayed
    assert any(name.endswith(".bias") for name in reg.excluded_names)
    assert "conv1.1.weight" in reg.excluded_names  # the stem's batch-norm weight
    assert len(reg.l2sp_names + reg.l2_names + reg.excluded_names) == len(every)


def test_l2sp_all_covers_every_transferred_layer_and_reinit_layers_stay_l2():
    model, layer_map, plan = _setup(l2sp_layers="all", reinit_layers=2)
    decayed = _decayed(model)
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    num_layers = len(layer_map)
    transferred = set(range(1, num_layers - 1))  # all but the top k=2
    assert set(reg.l2sp_names) == _names_in_layers(layer_map, transferred, decayed)
    assert set(reg.l2_names) == _names_in_layers(layer_map, {num_layers - 1, num_layers}, decayed)


def test_zero_l2sp_layers_is_plain_l2():
    model, layer_map, plan = _setup(l2sp_layers=0)
    decayed = _decayed(model)
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    assert reg.l2sp_names == ()
    assert set(reg.l2_names) == decayed
    assert reg.values(model)["l2sp_penalty"] == 0.0


def test_penalty_gradient_alone_is_alpha_diff_beta_w_and_zero_on_excluded():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    w0 = _perturb(model)
    grads = _penalty_grads(model, reg)
    params = dict(model.named_parameters())
    assert reg.l2sp_names and reg.l2_names and reg.excluded_names
    for name in reg.l2sp_names:
        expected = ALPHA * (params[name].detach() - w0[name])
        torch.testing.assert_close(grads[name], expected, rtol=1e-5, atol=1e-7)
    for name in reg.l2_names:
        torch.testing.assert_close(grads[name], BETA * params[name].detach(), rtol=1e-5, atol=1e-7)
    for name in reg.excluded_names:
        assert grads[name] is None or not grads[name].any(), name


def test_penalty_value_is_the_hand_computed_sum():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    w0 = _perturb(model)
    params = dict(model.named_parameters())
    # float64 sums, one parameter at a time: independent of the fused kernels under test.
    l2sp = sum(((params[n].double() - w0[n].double()) ** 2).sum() for n in reg.l2sp_names)
    l2 = sum((params[n].double() ** 2).sum() for n in reg.l2_names)
    penalty = reg.penalty(model)
    assert isinstance(penalty, Penalty)
    assert penalty.l2sp.item() == pytest.approx(ALPHA / 2 * l2sp.item(), rel=1e-5)
    assert penalty.l2.item() == pytest.approx(BETA / 2 * l2.item(), rel=1e-5)
    assert penalty.total.item() == pytest.approx(penalty.l2sp.item() + penalty.l2.item())
    values = reg.values(model)
    assert values == {
        "l2sp_penalty": pytest.approx(penalty.l2sp.item()),
        "l2_penalty": pytest.approx(penalty.l2.item()),
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        penalty.l2 = torch.zeros(())  # type: ignore[misc]


def test_w0_is_a_snapshot_not_a_view():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    assert reg.values(model)["l2sp_penalty"] == 0.0
    grads = _penalty_grads(model, reg)  # at w == w0: a zero gradient, not NaN
    assert all(torch.equal(grads[n], torch.zeros_like(grads[n])) for n in reg.l2sp_names)
    _perturb(model)
    assert reg.values(model)["l2sp_penalty"] > 0.0


def test_add_gradient_matches_autograd_through_the_penalty():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    _perturb(model)
    expected = _penalty_grads(model, reg)

    model.zero_grad(set_to_none=True)  # every grad None: add_gradient_ must create them
    reg.add_gradient_(model)
    for name, p in model.named_parameters():
        if name in reg.excluded_names:
            assert p.grad is None or not p.grad.any(), name
        else:
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-5, atol=1e-7)

    # With a loss gradient already there, the penalty's is added to it, not written over it.
    model.zero_grad(set_to_none=True)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model.eval()  # batch statistics of 2 images are not the point here
    model(images).sum().backward()
    loss_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    reg.add_gradient_(model)
    for name, p in model.named_parameters():
        penalty_grad = 0 if name in reg.excluded_names else expected[name]
        torch.testing.assert_close(p.grad, loss_grads[name] + penalty_grad, rtol=1e-5, atol=1e-7)


def test_decay_norm_and_bias_includes_norm_weights_and_biases():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA, decay_norm_and_bias=True)
    assert reg.excluded_names == ()
    assert set(reg.l2sp_names) == _names_in_layers(layer_map, {1, 2})
    assert "conv1.1.weight" in reg.l2sp_names and "conv1.1.bias" in reg.l2sp_names
    assert "fc.bias" in reg.l2_names
    w0 = _perturb(model)
    grads = _penalty_grads(model, reg)
    bn = dict(model.named_parameters())["conv1.1.bias"].detach()
    torch.testing.assert_close(grads["conv1.1.bias"], ALPHA * (bn - w0["conv1.1.bias"]))
    fc_bias = dict(model.named_parameters())["fc.bias"].detach()
    torch.testing.assert_close(grads["fc.bias"], BETA * fc_bias)


def test_model_no_weight_decay_names_are_excluded():
    model, layer_map, plan = _setup("test_vit", reinit_layers=1, l2sp_layers="all")
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    # pos_embed and cls_token are 3-d: excluded only because the model's no_weight_decay()
    # names them.
    assert {"pos_embed", "cls_token"} <= set(reg.excluded_names)
    assert "patch_embed.proj.weight" in reg.l2sp_names
    assert "blocks.0.norm1.weight" in reg.excluded_names
    everything = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA, decay_norm_and_bias=True)
    assert {"pos_embed", "cls_token"} <= set(everything.l2sp_names)


def test_frozen_parameters_are_not_regularised():
    model, layer_map, plan = _setup()
    model.get_parameter("conv1.0.weight").requires_grad_(False)
    reg = L2SPRegulariser(model, layer_map, plan, ALPHA, BETA)
    assert "conv1.0.weight" in reg.excluded_names
    assert "conv1.0.weight" not in reg.l2sp_names


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_invalid_strength_is_a_config_error(name, value):
    model, layer_map, plan = _setup()
    strengths = {"alpha": ALPHA, "beta": BETA, name: value}
    with pytest.raises(ConfigError) as info:
        L2SPRegulariser(model, layer_map, plan, **strengths)
    assert info.value.field == f"settings.{name}"
    assert f"'settings.{name}' must be a" in str(info.value)


def test_zero_strengths_add_nothing():
    model, layer_map, plan = _setup()
    reg = L2SPRegulariser(model, layer_map, plan, 0.0, 0.0)
    _perturb(model)
    assert reg.values(model) == {"l2sp_penalty": 0.0, "l2_penalty": 0.0}
    model.zero_grad(set_to_none=True)
    reg.add_gradient_(model)
    assert all(p.grad is None for p in model.parameters())
