"""The inner loops: one training epoch and one evaluation pass, read top to bottom.

Kept free of set-up so that the benchmark can time exactly this loop against a bare one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nonbinary_ft.regularization import L2SPRegulariser

__all__ = ["EpochStats", "Precision", "train_one_epoch", "evaluate"]


@dataclass(frozen=True)
class Precision:
    """How the loop runs on its device: AMP and memory format (both only on CUDA)."""

    device: torch.device
    amp: bool
    channels_last: bool

    @classmethod
    def for_device(cls, device: torch.device, amp: bool, channels_last: bool) -> Precision:
        """AMP and channels_last only where they help: on CUDA."""
        on_cuda = device.type == "cuda"
        return cls(device, amp and on_cuda, channels_last and on_cuda)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """Move a batch, in the model's memory format."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def autocast(self) -> torch.autocast:
        """Mixed precision context (a no-op when AMP is off)."""
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)


@dataclass(frozen=True)
class EpochStats:
    """What one pass over a loader measured."""

    loss: float
    accuracy: float
    samples: int

    @property
    def diverged(self) -> bool:
        """True when the loss is NaN or infinite: the trial cannot recover."""
        return not math.isfinite(self.loss)


def train_one_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    regulariser: L2SPRegulariser,
    precision: Precision,
    scaler: torch.amp.GradScaler,
    label_smoothing: float = 0.0,
    grad_clip: float | None = None,
) -> EpochStats:
    """Train one epoch; the L2/L2-SP penalty enters through its analytic gradient.

    A NaN or infinite batch loss makes the epoch's loss non-finite (checked once, at the end,
    rather than syncing with the device at every step).
    """
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    # Sums stay on the device so that no step waits for a host sync.
    loss_sum = torch.zeros((), device=precision.device)
    correct = torch.zeros((), device=precision.device, dtype=torch.long)
    seen = 0
    for images, targets in loader:
        images = precision.to_device(images)
        targets = targets.to(precision.device, non_blocking=True)
        with precision.autocast():
            logits = model(images)
            loss = criterion(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        # The penalty's gradient is added after unscaling, so it is never scaled twice.
        scaler.unscale_(optimizer)
        regulariser.add_gradient_(model)
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_sum += loss.detach().float() * targets.size(0)
        correct += (logits.detach().argmax(dim=1) == targets).sum()
        seen += targets.size(0)
    return EpochStats(loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1), seen)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: torch.utils.data.DataLoader, precision: Precision
) -> EpochStats:
    """Loss and top-1 accuracy of the model on a loader (single crop, no augmentation)."""
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = torch.zeros((), device=precision.device)
    correct = torch.zeros((), device=precision.device, dtype=torch.long)
    seen = 0
    for images, targets in loader:
        images = precision.to_device(images)
        targets = targets.to(precision.device, non_blocking=True)
        with precision.autocast():
            logits = model(images)
        loss_sum += criterion(logits.float(), targets)
        correct += (logits.argmax(dim=1) == targets).sum()
        seen += targets.size(0)
    return EpochStats(loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1), seen)
