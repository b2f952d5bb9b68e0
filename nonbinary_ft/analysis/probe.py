"""Fixed-feature accuracy: a linear classifier on frozen features, with its own small search.

The paper's section 4.1 trains "a simple fully connected classification layer" on the
pre-trained features and compares it with training the whole model from random init. Here
the layer is a multinomial logistic regression on standardised features (mean and spread of
the training split) with an L2 penalty on its weights; the penalty's strength is picked on
VALIDATION accuracy, and only the winner is scored on test.

Each strength is a convex problem, solved to convergence by L-BFGS rather than run for a
fixed number of gradient steps. Two things keep the search cheap: the strengths are walked
from strongest to weakest, each fit starting from the previous solution, whose optimum is
close; and with fewer samples than dimensions the weights are sought in the span of the
training rows, where the penalised optimum lies (representer theorem), so each step costs
N x N instead of N x D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize

from nonbinary_ft.analysis.features import FeatureSet
from nonbinary_ft.analysis.scores.base import check_features, check_labels
from nonbinary_ft.analysis.threads import one_thread_when_small
from nonbinary_ft.config import ProbeConfig
from nonbinary_ft.errors import AnalysisError

__all__ = [
    "LinearClassifier",
    "ProbeCandidate",
    "ProbeResult",
    "fit_linear_probe",
    "fixed_feature_accuracy",
    "logistic_regression_path",
]


class LinearClassifier(NamedTuple):
    """A fitted multinomial logistic regression: ``logits = features @ weights + bias``.

    Attributes:
        weight_decay: the L2 strength it was fitted with.
        weights: ``(D, C)`` float64 weights.
        bias: ``(C,)`` float64 bias (not penalised).
        iterations: the L-BFGS iterations its fit took.
    """

    weight_decay: float
    weights: np.ndarray
    bias: np.ndarray
    iterations: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The predicted class of each row of ``features`` (``(N, D)``, standardised alike)."""
        return np.argmax(features @ self.weights + self.bias, axis=1)


@dataclass(frozen=True)
class ProbeCandidate:
    """One point of the probe's search and how it did.

    Attributes:
        weight_decay: the L2 strength.
        train_accuracy, val_accuracy: the fitted classifier's accuracy on either split.
        iterations: the L-BFGS iterations its fit took (``max_iter``: stopped unconverged).
    """

    weight_decay: float
    train_accuracy: float
    val_accuracy: float
    iterations: int


@dataclass(frozen=True)
class ProbeResult:
    """The fixed-feature accuracy and how it was reached.

    Attributes:
        val_accuracy: validation accuracy of the chosen classifier (what the regime uses).
        test_accuracy: its test accuracy (``None`` when no test split was given).
        train_accuracy: its training accuracy.
        weight_decay: the chosen L2 strength.
        candidates: every strength tried, strongest first.
        chance_accuracy: the share of the most frequent class in validation.
    """

    val_accuracy: float
    test_accuracy: float | None
    train_accuracy: float
    weight_decay: float
    candidates: tuple[ProbeCandidate, ...]
    chance_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _loss_and_gradient(
    params: np.ndarray,
    inputs: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    weight_decay: float,
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy + ``weight_decay / 2 * |W|^2`` and its gradient.

    ``params`` is ``W`` (``(K, C)``, row-major) followed by the bias (``(C,)``), which is
    left out of the penalty, as usual for L2 on a linear model.
    """
    n = labels.size
    weights = params[:-num_classes].reshape(-1, num_classes)
    rows = np.arange(n)
    logits = inputs @ weights + params[-num_classes:]
    logits -= logits.max(axis=1, keepdims=True)  # the softmax is shift-invariant
    probs = np.exp(logits)
    sums = probs.sum(axis=1)
    loss = (np.log(sums).sum() - logits[rows, labels].sum()) / n
    loss += 0.5 * weight_decay * float(weights.ravel() @ weights.ravel())
    # d loss / d logits = (softmax - one-hot) / N
    probs /= sums[:, None]
    probs[rows, labels] -= 1.0
    probs /= n
    gradient = inputs.T @ probs + weight_decay * weights
    return loss, np.concatenate([gradient.ravel(), probs.sum(axis=0)])


def logistic_regression_path(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    weight_decays: tuple[float, ...],
    max_iter: int = 200,
    tol: float = 1e-5,
) -> list[LinearClassifier]:
    """Fit an L2-penalised multinomial logistic regression for each strength, strongest first.

    The objective is ``mean cross-entropy + weight_decay / 2 * |W|^2`` (the bias is not
    penalised), i.e. scikit-learn's ``LogisticRegression(C=1 / (weight_decay * N))``. The
    first fit starts from zero, each later one from the previous solution. With fewer
    samples than dimensions the fits run on ``R^T`` of ``X^T = Q R`` and map back with
    ``W = Q B``: a weight component orthogonal to the rows changes no logit and only adds
    to the penalty, so the optimum has none.

    Args:
        features: ``(N, D)`` training features, float64 (standardise them first: the
            penalty treats every dimension alike).
        labels: ``(N,)`` class indices in ``0 .. num_classes - 1``.
        num_classes: the number of classes C.
        weight_decays: the strengths, in any order; 0 is allowed but has no optimum on
            separable data (the fit then stops at ``max_iter``).
        max_iter: the most L-BFGS iterations per strength.
        tol: a fit stops when no entry of the gradient exceeds this; the weights are then
            within about ``tol / weight_decay`` of the optimum.

    Returns:
        One :class:`LinearClassifier` per strength, strongest first.
    """
    n, d = features.shape
    with one_thread_when_small(n * d):
        rows_basis = None
        if n < d:
            rows_basis, triangle = np.linalg.qr(features.T)
            features = np.ascontiguousarray(triangle.T)
        params = np.zeros((features.shape[1] + 1) * num_classes)
        path = []
        for weight_decay in sorted(weight_decays, reverse=True):
            fit = scipy.optimize.minimize(
                _loss_and_gradient,
                params,
                args=(features, labels, num_classes, weight_decay),
                jac=True,
                method="L-BFGS-B",
                # Only the gradient decides when to stop (ftol is at rounding level).
                options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
            )
            params = fit.x
            weights = params[:-num_classes].reshape(-1, num_classes)
            path.append(
                LinearClassifier(
                    weight_decay=float(weight_decay),
                    weights=weights if rows_basis is None else rows_basis @ weights,
                    bias=params[-num_classes:].copy(),
                    iterations=int(fit.nit),
                )
            )
    return path


def _check_split(features: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = check_features(features, what=f"{name} features")
    y = check_labels(labels, x.shape[0], what=f"{name} labels")
    if y.min() < 0:
        raise AnalysisError(f"{name} labels must be class indices >= 0 but got {y.min()}.")
    return x, y


def _accuracy(classifier: LinearClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(classifier.predict(x) == y))


def _check_train_val(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both splits checked: finite, matching dimensions, at least two training classes."""
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
    return train_x, train_y, val_x, val_y


def fit_linear_probe(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None = None,
    probe: ProbeConfig | None = None,
    num_classes: int | None = None,
) -> ProbeResult:
    """Fit a linear classifier for every weight decay of ``probe``; keep the best on val
    (ties to the stronger weight decay: the simpler classifier).

    Args:
        train, val, test: ``(features (N, D), integer labels (N,))`` per split.
        probe: the search (weight decays, iterations); default :class:`ProbeConfig`.
        num_classes: number of classes; default: the largest label + 1.

    Raises:
        AnalysisError: NaN or infinite features, mismatched shapes, or fewer than two
            classes in the training split.
    """
    probe = probe or ProbeConfig()
    train_x, train_y, val_x, val_y = _check_train_val(train, val)
    labels = [train_y, val_y] + ([test[1]] if test is not None else [])
    classes = num_classes or int(max(int(y.max()) for y in labels if y.size)) + 1
    # Standardising, the fits and the accuracies are all small matrix products.
    with one_thread_when_small(train_x.size):
        mean = train_x.mean(axis=0)
        scale = train_x.std(axis=0)
        # A constant dimension carries nothing; dividing by ~0 would blow up rounding noise.
        scale[scale < 1e-8] = 1.0

        def standardised(x: np.ndarray) -> np.ndarray:
            return (x - mean) / scale

        train_x, val_x = standardised(train_x), standardised(val_x)
        path = logistic_regression_path(
            train_x, train_y, classes, probe.weight_decays, probe.max_iter, probe.tol
        )
        candidates = [
            ProbeCandidate(
                weight_decay=classifier.weight_decay,
                train_accuracy=_accuracy(classifier, train_x, train_y),
                val_accuracy=_accuracy(classifier, val_x, val_y),
                iterations=classifier.iterations,
            )
            for classifier in path
        ]
        # max() keeps the first of equals: the strongest weight decay among the best.
        best = max(range(len(path)), key=lambda index: candidates[index].val_accuracy)
        test_accuracy = None
        if test is not None:
            test_x, test_y = _check_split(*test, "test")
            test_accuracy = _accuracy(path[best], standardised(test_x), test_y)
        return ProbeResult(
            val_accuracy=candidates[best].val_accuracy,
            test_accuracy=test_accuracy,
            train_accuracy=candidates[best].train_accuracy,
            weight_decay=candidates[best].weight_decay,
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
