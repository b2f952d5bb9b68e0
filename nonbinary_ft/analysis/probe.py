"""Fixed-feature accuracy: a linear classifier on frozen features, with its own small search.

The paper's section 4.1 trains "a simple fully connected classification layer" on the
pre-trained features and compares it with training the whole model from random init. Here
the layer is a multinomial logistic regression on standardised features (mean and spread of
the training split), trained full-batch with Adam from zero weights; the learning rate and
the L2 strength are picked on VALIDATION accuracy, and only the winner is scored on test.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nonbinary_ft.analysis.features import FeatureSet
from nonbinary_ft.analysis.scores.base import check_features, check_labels
from nonbinary_ft.config import ProbeConfig
from nonbinary_ft.errors import AnalysisError

__all__ = ["ProbeCandidate", "ProbeResult", "fit_linear_probe", "fixed_feature_accuracy"]

# Training features with fewer elements than this are fitted on one thread.
_SMALL_PROBLEM = 1 << 20


@dataclass(frozen=True)
class ProbeCandidate:
    """One point of the probe's search and how it did."""

    lr: float
    weight_decay: float
    train_accuracy: float
    val_accuracy: float


@dataclass(frozen=True)
class ProbeResult:
    """The fixed-feature accuracy and how it was reached.

    Attributes:
        val_accuracy: validation accuracy of the chosen classifier (what the regime uses).
        test_accuracy: its test accuracy (``None`` when no test split was given).
        train_accuracy: its training accuracy.
        lr, weight_decay: the chosen hyperparameters.
        candidates: every point tried, in search order.
        chance_accuracy: the share of the most frequent class in validation.
    """

    val_accuracy: float
    test_accuracy: float | None
    train_accuracy: float
    lr: float
    weight_decay: float
    candidates: tuple[ProbeCandidate, ...]
    chance_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _check_split(features: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = check_features(features, what=f"{name} features")
    y = check_labels(labels, x.shape[0], what=f"{name} labels")
    if y.min() < 0:
        raise AnalysisError(f"{name} labels must be class indices >= 0 but got {y.min()}.")
    return x, y


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _train(
    x: torch.Tensor, y: torch.Tensor, classes: int, lr: float, weight_decay: float, steps: int
) -> nn.Linear:
    # Zero weights: the problem is convex, so the start only matters for reproducibility.
    model = nn.Linear(x.shape[1], classes)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        # The penalty is in the loss (not Adam's weight_decay, which would be scaled by the
        # adaptive step) and leaves the bias free, as usual for L2 on a linear model.
        loss = criterion(model(x), y) + 0.5 * weight_decay * model.weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    return model


def fit_linear_probe(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None = None,
    probe: ProbeConfig | None = None,
    num_classes: int | None = None,
) -> ProbeResult:
    """Fit a linear classifier for every (lr, weight decay) of ``probe``; keep the best on val.

    Ties go to the earlier candidate in the order (lr, then weight decay, as listed).

    Args:
        train, val, test: ``(features (N, D), integer labels (N,))`` per split.
        probe: the search (learning rates, weight decays, steps); default :class:`ProbeConfig`.
        num_classes: number of classes; default: the largest label + 1.

    Raises:
        AnalysisError: NaN or infinite features, mismatched shapes, or fewer than two
            classes in the training split.
    """
    probe = probe or ProbeConfig()
    train_x, train_y = _check_split(*train, "train")
    val_x, val_y = _check_split(*val, "val")
    present = np.unique(train_y)
    if present.size < 2:
        raise AnalysisError(
            f"A linear probe needs at least 2 classes in the training split but all "
            f"{train_y.size} training samples have label {present[0]}."
        )
    if val_x.shape[1] != train_x.shape[1]:
        raise AnalysisError(
            f"val features have {val_x.shape[1]} dimensions but train features {train_x.shape[1]}."
        )
    labels = [train_y, val_y] + ([test[1]] if test is not None else [])
    classes = num_classes or int(max(int(y.max()) for y in labels if y.size)) + 1
    mean = train_x.mean(axis=0)
    scale = train_x.std(axis=0)
    # A constant dimension carries nothing; dividing by ~0 would blow up rounding noise.
    scale[scale < 1e-8] = 1.0

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor((x - mean) / scale, dtype=torch.float32),
            torch.as_tensor(y, dtype=torch.long),
        )

    tx, ty = tensors(train_x, train_y)
    vx, vy = tensors(val_x, val_y)
    candidates: list[ProbeCandidate] = []
    best: tuple[float, nn.Linear, ProbeCandidate] | None = None
    threads = torch.get_num_threads()
    if tx.numel() < _SMALL_PROBLEM:
        # A small problem loses more to thread synchronisation than it gains (10x slower
        # with 2 threads on a busy 2-core machine).
        torch.set_num_threads(1)
    try:
        for lr, weight_decay in itertools.product(probe.lrs, probe.weight_decays):
            model = _train(tx, ty, classes, lr, weight_decay, probe.steps)
            candidate = ProbeCandidate(
                lr, weight_decay, _accuracy(model, tx, ty), _accuracy(model, vx, vy)
            )
            candidates.append(candidate)
            if best is None or candidate.val_accuracy > best[0]:
                best = (candidate.val_accuracy, model, candidate)
    finally:
        torch.set_num_threads(threads)
    assert best is not None  # ProbeConfig guarantees at least one candidate
    _, model, chosen = best
    test_accuracy = None
    if test is not None:
        test_x, test_y = _check_split(*test, "test")
        test_accuracy = _accuracy(model, *tensors(test_x, test_y))
    return ProbeResult(
        val_accuracy=chosen.val_accuracy,
        test_accuracy=test_accuracy,
        train_accuracy=chosen.train_accuracy,
        lr=chosen.lr,
        weight_decay=chosen.weight_decay,
        candidates=tuple(candidates),
        chance_accuracy=float(np.bincount(val_y).max() / val_y.size),
    )


def fixed_feature_accuracy(features: FeatureSet, probe: ProbeConfig | None = None) -> ProbeResult:
    """The fixed-feature accuracy of a :class:`FeatureSet` (train, pick on val, score test).

    Args:
        features: the cached pre-trained features.
        probe: the probe's search; default :class:`ProbeConfig` (``analysis.probe``).

    Raises:
        AnalysisError: as :func:`fit_linear_probe`.
    """
    return fit_linear_probe(
        (features.train.features, features.train.labels),
        (features.val.features, features.val.labels),
        (features.test.features, features.test.labels),
        probe,
        num_classes=len(features.classes),
    )
