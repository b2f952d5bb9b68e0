"""The L2-SP / L2 penalty of one trial: towards the pre-trained weights, or towards zero.

``alpha/2 * sum ||w - w0||^2`` over the weights of the plan's L2-SP layers (the lowest m
transferred layers), plus ``beta/2 * sum ||w||^2`` over every other regularised weight,
re-initialised layers included. ``w0`` is a snapshot of the weights taken when the regulariser
is built: build it after loading and re-initialising, before the first step.

The training loop adds the penalty's analytic gradient with :meth:`L2SPRegulariser.add_gradient_`
(a few fused ``torch._foreach`` kernels) rather than back-propagating through
:meth:`L2SPRegulariser.penalty`; both give the same gradient, which the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nonbinary_ft.errors import ConfigError
from nonbinary_ft.models.layers import LayerMap, LayerPlan

__all__ = ["L2SPRegulariser", "Penalty"]


@dataclass(frozen=True)
class Penalty:
    """The two terms of the penalty, as scalar tensors (differentiable when built so)."""

    l2sp: torch.Tensor
    l2: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """The penalty to add to the loss: ``l2sp + l2``."""
        return self.l2sp + self.l2


def _check_strength(name: str, value: float) -> float:
    # `not value >= 0` also catches NaN, which compares false with everything.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"settings.{name}", "a float >= 0", value)
    if not math.isfinite(value):
        raise ConfigError(f"settings.{name}", "a finite float >= 0", value)
    return float(value)


def _no_weight_decay_names(model: torch.nn.Module) -> set[str]:
    """The names a timm model asks never to decay (position embeddings, class tokens...)."""
    no_weight_decay = getattr(model, "no_weight_decay", None)
    return set(no_weight_decay()) if callable(no_weight_decay) else set()


def _sum_of_squares(tensors: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``sum ||t||^2`` over a list, in one fused norm kernel (differentiable)."""
    if not tensors:
        return torch.zeros((), device=device)
    # _foreach_norm's gradient is 0 (not NaN) at a zero tensor, so w == w0 is safe.
    norms = torch._foreach_norm(tensors)
    return torch.stack(norms).float().square().sum()


class L2SPRegulariser:
    """L2-SP towards the pre-trained weights on the plan's L2-SP layers, L2 on the rest.

    Which parameters are regularised: every trainable parameter, except (timm's convention,
    unless ``decay_norm_and_bias``) biases, norm weights and every other parameter with
    ``ndim <= 1``, and the names in ``model.no_weight_decay()`` when the model has it.
    ``decay_norm_and_bias=True`` regularises all of these as well. Frozen parameters
    (``requires_grad=False``) are never regularised: they do not train.

    The regulariser holds the model's parameter tensors (and their snapshot ``w0``) from
    construction, so :meth:`penalty`, :meth:`add_gradient_` and :meth:`values` must be given
    that model (or a wrapper that shares its parameters, e.g. DDP). Moving the model in place
    (``model.to(device)``) keeps working: ``w0`` follows on the next call. Loading a
    checkpoint into the model later (resuming) keeps ``w0`` the pre-trained weights, as it
    should.

    Args:
        model: the model, after loading the pre-trained weights and re-initialising layers.
        layer_map: its layer map.
        plan: the trial's layer plan (``plan.uses_l2sp(layer)`` picks the L2-SP layers).
        alpha: L2-SP strength (``settings.alpha``).
        beta: L2 strength (``settings.beta``).
        decay_norm_and_bias: also regularise biases, norm weights, every ``ndim <= 1``
            parameter and the model's ``no_weight_decay()`` names.

    Raises:
        ConfigError: ``alpha`` or ``beta`` is negative, NaN or infinite.
        ModelError: a parameter of ``model`` is not in ``layer_map``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        layer_map: LayerMap,
        plan: LayerPlan,
        alpha: float,
        beta: float,
        decay_norm_and_bias: bool = False,
    ) -> None:
        self.alpha = _check_strength("alpha", alpha)
        self.beta = _check_strength("beta", beta)
        self.decay_norm_and_bias = decay_norm_and_bias
        skip_names = _no_weight_decay_names(model)
        l2sp: list[tuple[str, torch.nn.Parameter]] = []
        l2: list[tuple[str, torch.nn.Parameter]] = []
        excluded: list[str] = []
        for name, param in model.named_parameters():
            layer = layer_map.layer_of(name)
            by_convention = param.ndim <= 1 or name.endswith(".bias") or name in skip_names
            if not param.requires_grad or (by_convention and not decay_norm_and_bias):
                excluded.append(name)
            elif plan.uses_l2sp(layer):
                l2sp.append((name, param))
            else:
                l2.append((name, param))
        self._l2sp_names = tuple(name for name, _ in l2sp)
        self._l2_names = tuple(name for name, _ in l2)
        self._excluded_names = tuple(excluded)
        # Flat lists, built once: every call is then a handful of fused foreach kernels.
        self._l2sp_params = [param for _, param in l2sp]
        self._l2_params = [param for _, param in l2]
        self._w0 = [param.detach().clone() for param in self._l2sp_params]
        first = next(model.parameters(), None)
        self._device = first.device if first is not None else torch.device("cpu")

    @property
    def l2sp_names(self) -> tuple[str, ...]:
        """Names of the parameters that decay towards their pre-trained values."""
        return self._l2sp_names

    @property
    def l2_names(self) -> tuple[str, ...]:
        """Names of the parameters that decay towards zero (re-initialised layers included)."""
        return self._l2_names

    @property
    def excluded_names(self) -> tuple[str, ...]:
        """Names of the parameters that are not regularised (norms, biases, frozen...)."""
        return self._excluded_names

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(alpha={self.alpha}, beta={self.beta}, "
            f"l2sp={len(self._l2sp_names)}, l2={len(self._l2_names)}, "
            f"excluded={len(self._excluded_names)})"
        )

    def _follow_device(self) -> None:
        # One comparison per call: w0 follows the model if it was moved in place after the
        # snapshot (e.g. the regulariser built on CPU, the model then sent to the GPU).
        params = self._l2sp_params or self._l2_params
        if params and params[0].device != self._device:
            self._device = params[0].device
            pairs = zip(self._w0, self._l2sp_params, strict=True)
            self._w0 = [w0.to(param.device) for w0, param in pairs]

    def penalty(self, model: torch.nn.Module) -> Penalty:
        """The penalty at the model's current weights, differentiable w.r.t. them.

        Args:
            model: the model the regulariser was built for (its parameters are held from
                construction; the argument keeps every regulariser's interface).

        Returns:
            ``Penalty(l2sp=alpha/2 * sum ||w - w0||^2, l2=beta/2 * sum ||w||^2)``.
        """
        self._follow_device()
        diffs = torch._foreach_sub(self._l2sp_params, self._w0) if self._l2sp_params else []
        return Penalty(
            l2sp=0.5 * self.alpha * _sum_of_squares(diffs, self._device),
            l2=0.5 * self.beta * _sum_of_squares(self._l2_params, self._device),
        )

    @torch.no_grad()
    def add_gradient_(self, model: torch.nn.Module) -> None:
        """Add the penalty's gradient to ``p.grad`` in place: what the loop calls after backward.

        Adds ``alpha * (w - w0)`` to the L2-SP weights' gradients and ``beta * w`` to the L2
        weights'; a parameter whose ``grad`` is None (unused by this step's loss) gets the
        penalty's gradient alone. Call it on unscaled gradients (after
        ``GradScaler.unscale_``) so that the penalty is not scaled.

        Args:
            model: the model the regulariser was built for.
        """
        self._follow_device()
        if self.alpha > 0 and self._l2sp_params:
            grads = _grads(self._l2sp_params)
            diffs = torch._foreach_sub(self._l2sp_params, self._w0)
            torch._foreach_add_(grads, diffs, alpha=self.alpha)
        if self.beta > 0 and self._l2_params:
            torch._foreach_add_(_grads(self._l2_params), self._l2_params, alpha=self.beta)

    @torch.no_grad()
    def values(self, model: torch.nn.Module) -> dict[str, float]:
        """The two terms as floats, for per-epoch reporting (one device sync).

        Args:
            model: the model the regulariser was built for.

        Returns:
            ``{"l2sp_penalty": ..., "l2_penalty": ...}``.
        """
        penalty = self.penalty(model)
        l2sp, l2 = torch.stack([penalty.l2sp, penalty.l2]).tolist()
        return {"l2sp_penalty": l2sp, "l2_penalty": l2}


def _grads(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """The parameters' gradients, creating zero ones where a gradient is None."""
    grads = [param.grad for param in params]
    if any(grad is None for grad in grads):
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        grads = [param.grad for param in params]
    return grads  # type: ignore[return-value]
