"""Param groups, optimiser and LR schedule of one trial.

Each learning-rate role of the layer plan ("new", "high", "low") gets a real torch param
group carrying its exact LR (not timm's ``lr_scale``, which only timm's schedulers honour).
The schedule is one pure multiplier of the step, :func:`lr_multiplier`, applied by torch's
``LambdaLR`` to every group alike, so the groups keep their configured LR ratios at every
step. The optimiser never decays weights: the L2/L2-SP regulariser carries all the decay.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import torch

from nonbinary_ft.config import TrainConfig, TrialSettings
from nonbinary_ft.errors import ConfigError
from nonbinary_ft.models.layers import LayerMap, LayerPlan, LrGroup

__all__ = [
    "GROUP_ORDER",
    "WARMUP_START",
    "build_param_groups",
    "create_optimizer",
    "create_scheduler",
    "lr_multiplier",
]

logger = logging.getLogger(__name__)

#: Order of the param groups, bottom of the model to top.
GROUP_ORDER: tuple[LrGroup, ...] = ("low", "high", "new")

#: Fraction of the LR at the first warm-up step (the paper's code warms up from a tenth).
WARMUP_START = 0.1


def _group_lrs(settings: TrialSettings) -> dict[LrGroup, float]:
    if settings.low_layers > 0 and settings.lr_low is None:
        # TrialSettings already refuses this; checked again because settings may be built
        # with model_construct() by callers that skip validation.
        raise ConfigError("settings.lr_low", "set when low_layers > 0", None)
    return {
        "new": settings.effective_lr_new,
        "high": settings.lr_high,
        "low": settings.lr_low if settings.lr_low is not None else settings.lr_high,
    }


def build_param_groups(
    model: torch.nn.Module, layer_map: LayerMap, plan: LayerPlan, settings: TrialSettings
) -> list[dict[str, Any]]:
    """One torch param group per LR role of the plan that has trainable parameters.

    Args:
        model: the model to train (loaded and re-initialised).
        layer_map: its layer map (from :func:`~nonbinary_ft.models.layers.build_layer_map`).
        plan: the trial's layer plan, which says each layer's LR role.
        settings: the trial settings, which give each role's LR (``effective_lr_new``,
            ``lr_high``, ``lr_low``).

    Returns:
        Groups ``{"name": "low"|"high"|"new", "lr": float, "params": [...],
        "weight_decay": 0.0}``, bottom to top; a role without parameters has no group. Every
        trainable parameter (``requires_grad``) is in exactly one group, in model order;
        frozen parameters are left out.

    Raises:
        ModelError: a parameter of ``model`` is not in ``layer_map`` (the map was built for
            another model).
        ConfigError: ``low_layers > 0`` without ``lr_low``.
    """
    lrs = _group_lrs(settings)
    params: dict[LrGroup, list[torch.nn.Parameter]] = {name: [] for name in GROUP_ORDER}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        params[plan.lr_group(layer_map.layer_of(name))].append(param)
    return [
        # weight_decay 0: the L2/L2-SP regulariser carries all the decay (never counted twice).
        {"name": name, "lr": lrs[name], "params": params[name], "weight_decay": 0.0}
        for name in GROUP_ORDER
        if params[name]
    ]


def create_optimizer(
    param_groups: list[dict[str, Any]], train: TrainConfig
) -> torch.optim.Optimizer:
    """The trial's optimiser over the given param groups.

    SGD with ``train.momentum`` and ``train.nesterov`` (the paper's code), or AdamW when
    ``train.optimizer == "adamw"``. Weight decay is forced to 0 in every group, whatever the
    groups say: the L2/L2-SP penalties carry all the decay, so it is never counted twice.

    Args:
        param_groups: groups as built by :func:`build_param_groups` (each with its own "lr").
        train: the training recipe.

    Raises:
        ValueError: ``param_groups`` is empty (torch's own error).
    """
    groups = [{**group, "weight_decay": 0.0} for group in param_groups]
    if train.optimizer == "adamw":
        return torch.optim.AdamW(groups, weight_decay=0.0)
    # Nesterov with zero momentum is plain SGD, which torch refuses to build with
    # nesterov=True; momentum=0 is a valid setting, so fall back rather than fail.
    nesterov = train.nesterov and train.momentum > 0
    return torch.optim.SGD(groups, momentum=train.momentum, nesterov=nesterov, weight_decay=0.0)


def lr_multiplier(step: int, train: TrainConfig, steps_per_epoch: int) -> float:
    """Factor applied to every group's configured LR at optimisation step ``step`` (0-based).

    With ``W = warmup_epochs * steps_per_epoch`` and ``T = epochs * steps_per_epoch``:

    * warm-up, ``step < W``: linear from ``WARMUP_START`` (0.1) towards 1,
      ``0.1 + 0.9 * step / W``;
    * then, for ``scheduler="cosine"``: ``0.5 * (1 + cos(pi * (step - W) / (T - W)))``, from 1
      at the end of warm-up to 0 at step T (clamped to 0 beyond);
    * ``"step"``: ``step_gamma ** (epoch // step_every)`` with ``epoch = step //
      steps_per_epoch``, epochs counted from the start of training, warm-up included (timm's
      step scheduler);
    * ``"constant"``: 1.

    Args:
        step: optimisation steps taken so far.
        train: the training recipe (epochs, warm-up and scheduler settings).
        steps_per_epoch: optimisation steps in one epoch (batches of the training loader).

    Raises:
        ValueError: ``step < 0`` or ``steps_per_epoch < 1``.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0 but got {step}.")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1 but got {steps_per_epoch}.")
    warmup_steps = train.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        return WARMUP_START + (1.0 - WARMUP_START) * step / warmup_steps
    if train.scheduler == "cosine":
        total_steps = train.epochs * steps_per_epoch
        # max(.., 1): a run that is all warm-up still ends at 0 rather than dividing by 0.
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if train.scheduler == "step":
        return train.step_gamma ** ((step // steps_per_epoch) // train.step_every)
    return 1.0


def create_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The LR schedule of :func:`lr_multiplier`, stepped once per optimisation step.

    Every group's LR is its configured LR times the same multiplier, so the ratios between
    groups (e.g. ``lr_new / lr_high``) hold at every step. Building it sets the LRs of step 0.

    Args:
        optimizer: the optimiser; each group's current "lr" is taken as its configured LR.
        train: the training recipe (epochs, warm-up, scheduler).
        steps_per_epoch: optimisation steps per epoch (``len(train_loader)``).

    Raises:
        ValueError: ``steps_per_epoch < 1`` (an empty training loader).
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1 but got {steps_per_epoch}.")
    # A partial of a module-level function (not a lambda): LambdaLR's state_dict keeps it
    # checkpointable, and the multiplier stays one pure, separately tested function.
    multiplier = functools.partial(lr_multiplier, train=train, steps_per_epoch=steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
