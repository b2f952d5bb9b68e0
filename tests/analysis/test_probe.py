"""The fixed-feature linear probe: the regression it solves, and a search that reads val."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from nonbinary_ft.analysis import extract_features, fit_linear_probe, fixed_feature_accuracy
from nonbinary_ft.analysis.probe import logistic_regression_path
from nonbinary_ft.config import ProbeConfig
from nonbinary_ft.errors import AnalysisError

FAST = ProbeConfig(weight_decays=(1e-3,), max_iter=100)


def blobs(n_per_class: int, n_classes: int, dim: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * spread
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + rng.normal(size=(labels.size, dim)), labels


def standardised(x):
    return (x - x.mean(axis=0)) / x.std(axis=0)


# 30 samples in 80 dimensions (fitted in the span of the rows) and 120 in 6 (fitted as is).
@pytest.mark.parametrize(("n_per_class", "dim"), [(10, 80), (40, 6)], ids=["n<d", "n>d"])
def test_path_solves_scikit_learns_logistic_regression(n_per_class, dim):
    """Each strength's weights are those of LogisticRegression(C = 1 / (weight decay * N))."""
    x, y = blobs(n_per_class, 3, dim, spread=0.5, seed=0)
    x = standardised(x)
    path = logistic_regression_path(x, y, 3, (0.01, 1.0, 0.1), max_iter=1000, tol=1e-7)
    assert [c.weight_decay for c in path] == [1.0, 0.1, 0.01]  # strongest first
    for classifier in path:
        reference = LogisticRegression(
            C=1.0 / (classifier.weight_decay * y.size), tol=1e-10, max_iter=100_000
        ).fit(x, y)
        scale = np.abs(reference.coef_).max()
        np.testing.assert_allclose(classifier.weights, reference.coef_.T, atol=1e-4 * scale)
        # The bias is free up to a shift common to all classes; the probabilities are not.
        np.testing.assert_allclose(
            probabilities(classifier, x), reference.predict_proba(x), atol=1e-5
        )


def probabilities(classifier, x):
    logits = x @ classifier.weights + classifier.bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_warm_started_path_equals_independent_fits():
    x, y = blobs(10, 4, 50, spread=0.4, seed=3)
    x = standardised(x)
    path = logistic_regression_path(x, y, 4, (10.0, 1.0, 0.1, 0.01, 0.001), max_iter=1000, tol=1e-7)
    cold = []
    for classifier in path:
        (alone,) = logistic_regression_path(
            x, y, 4, (classifier.weight_decay,), max_iter=1000, tol=1e-7
        )
        cold.append(alone.iterations)
        # Both stop at a gradient of 1e-7, so weights differ by up to 1e-7 / weight decay.
        scale = np.abs(alone.weights).max()
        np.testing.assert_allclose(classifier.weights, alone.weights, atol=2e-4 * scale)
        np.testing.assert_allclose(probabilities(classifier, x), probabilities(alone, x), atol=1e-5)
    # A later fit starts near its optimum: the path costs fewer iterations than cold starts.
    assert sum(c.iterations for c in path[1:]) < sum(cold[1:])


def test_search_over_the_path_picks_what_independent_fits_would():
    (x, y), (val_x, val_y) = blobs(8, 4, 60, 0.5, seed=5), blobs(30, 4, 60, 0.5, seed=5)
    probe = ProbeConfig()
    result = fit_linear_probe((x, y), (val_x, val_y), None, probe)
    alone = [
        fit_linear_probe((x, y), (val_x, val_y), None, ProbeConfig(weight_decays=(decay,)))
        for decay in probe.weight_decays
    ]
    best = max(alone, key=lambda r: (r.val_accuracy, r.weight_decay))
    assert result.weight_decay == best.weight_decay
    assert result.val_accuracy == best.val_accuracy
    assert sorted(c.val_accuracy for c in result.candidates) == sorted(
        r.val_accuracy for r in alone
    )


def test_default_grid_regularises_when_samples_are_fewer_than_dimensions():
    """30 samples in 400 dimensions, the classes apart in 5: any weak penalty separates the
    training set perfectly, and validation has to prefer a strong one."""
    rng = np.random.default_rng(7)
    centres = np.zeros((3, 400))
    centres[:, :5] = rng.normal(size=(3, 5))

    def split(n_per_class):
        labels = np.repeat(np.arange(3), n_per_class)
        return centres[labels] + rng.normal(size=(labels.size, 400)), labels

    result = fit_linear_probe(split(10), split(200), split(200))
    weakest = result.candidates[-1]
    assert result.candidates[0].weight_decay >= 1.0  # the grid reaches a strong penalty
    assert weakest.train_accuracy == 1.0
    assert result.weight_decay > weakest.weight_decay
    assert result.val_accuracy > weakest.val_accuracy


def test_separable_classes_reach_full_accuracy():
    # Same centres (seed) for the three splits, fresh noise per split.
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 32)) * 10
    labels = np.repeat(np.arange(5), 40)

    def split():
        return centres[labels] + rng.normal(size=(labels.size, 32)), labels

    result = fit_linear_probe(split(), split(), split(), FAST)
    assert result.train_accuracy == 1.0
    assert result.val_accuracy == 1.0
    assert result.test_accuracy == 1.0
    assert result.chance_accuracy == pytest.approx(0.2)


def test_random_labels_stay_near_chance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(900, 100))
    y = rng.integers(0, 3, size=900)
    result = fit_linear_probe((x[:300], y[:300]), (x[300:600], y[300:600]), (x[600:], y[600:]))
    # 300 test samples: chance 1/3 +- 3 standard errors (0.027 each).
    assert abs(result.test_accuracy - 1 / 3) < 0.09
    # Some candidate fits the training noise, which is exactly what val must not reward.
    assert max(c.train_accuracy for c in result.candidates) > result.test_accuracy + 0.2


def _correlated(n: int, seed: int):
    """x1 = y + z, x2 = z with z large: x1 - x2 gives the label exactly, x1 alone barely.

    The fully fitted probe (no weight decay) finds x1 - x2 (~100 %); a heavily decayed one
    stays near the class-mean direction, mostly x1 (~60 %).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    z = rng.normal(scale=5.0, size=n)
    return np.stack([y + z, z], axis=1), y


SEARCH = ProbeConfig(weight_decays=(0.0, 30.0))


def test_search_picks_the_candidate_that_is_best_on_validation():
    train, val, test = _correlated(400, 0), _correlated(400, 1), _correlated(400, 2)
    result = fit_linear_probe(train, val, test, SEARCH)
    by_wd = {c.weight_decay: c for c in result.candidates}
    assert by_wd[0.0].val_accuracy > 0.95 and by_wd[30.0].val_accuracy < 0.8
    assert result.weight_decay == 0.0
    assert result.val_accuracy == by_wd[0.0].val_accuracy
    assert result.test_accuracy > 0.95


def test_search_reads_validation_not_train_or_test():
    """Flip the validation labels: the candidate that is WORSE on train and test wins."""
    train, (val_x, val_y), test = _correlated(400, 0), _correlated(400, 1), _correlated(400, 2)
    result = fit_linear_probe(train, (val_x, 1 - val_y), test, SEARCH)
    by_wd = {c.weight_decay: c for c in result.candidates}
    assert by_wd[0.0].train_accuracy > by_wd[30.0].train_accuracy
    assert result.weight_decay == 30.0
    assert result.val_accuracy == by_wd[30.0].val_accuracy
    # Test is scored with the chosen (decayed) classifier, not the best one.
    assert result.test_accuracy < 0.8


def test_fixed_feature_accuracy_on_cached_features(make_config):
    features = extract_features(make_config(), progress=False)
    result = fixed_feature_accuracy(features, ProbeConfig(max_iter=50))
    decays = sorted(ProbeConfig().weight_decays, reverse=True)
    assert [c.weight_decay for c in result.candidates] == decays
    assert 0.0 <= result.val_accuracy <= 1.0 and result.test_accuracy is not None
    assert result.to_dict()["weight_decay"] in decays


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), y), "NaN"),
        (lambda x, y: (x, np.zeros_like(y)), "at least 2 classes"),
        (lambda x, y: (x, y[:-1]), "one entry per feature row"),
        (lambda x, y: (x, y - 5), ">= 0"),
    ],
    ids=["nan", "one_class", "length", "negative_label"],
)
def test_bad_training_input_is_a_clear_error(mutate, message):
    x, y = blobs(10, 3, 4, 3.0, seed=0)
    with pytest.raises(AnalysisError, match=message):
        fit_linear_probe(mutate(x, y), (x, y), None, FAST)
