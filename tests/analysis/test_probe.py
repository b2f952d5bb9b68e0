"""The fixed-feature linear probe: separable data, random labels, and a search that reads val."""

from __future__ import annotations

import numpy as np
import pytest

from nonbinary_ft.analysis import extract_features, fit_linear_probe, fixed_feature_accuracy
from nonbinary_ft.config import ProbeConfig
from nonbinary_ft.errors import AnalysisError

FAST = ProbeConfig(lrs=(0.1,), weight_decays=(0.0,), steps=200)


def blobs(n_per_class: int, n_classes: int, dim: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * spread
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + rng.normal(size=(labels.size, dim)), labels


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


SEARCH = ProbeConfig(lrs=(0.1,), weight_decays=(0.0, 30.0), steps=300)


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
    result = fixed_feature_accuracy(features, ProbeConfig(steps=50, lrs=(0.1,)))
    assert len(result.candidates) == 4  # 1 lr x the 4 default weight decays
    assert 0.0 <= result.val_accuracy <= 1.0 and result.test_accuracy is not None
    assert result.to_dict()["lr"] == 0.1


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
