"""Bad input: a clear error, or a score "not computed" with its reason; never a silent number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nonbinary_ft.analysis import FeatureSet, SplitFeatures, analyse, transfer_scores
from nonbinary_ft.analysis.runner import stratified_subsample
from nonbinary_ft.errors import AnalysisError, DataError


def feature_set(train_x, train_y, classes=("a", "b", "c"), probs=None) -> FeatureSet:
    rng = np.random.default_rng(5)
    val_y = np.arange(len(classes)).repeat(3)
    val = SplitFeatures(rng.normal(size=(val_y.size, train_x.shape[1])), val_y)
    train = SplitFeatures(np.asarray(train_x), np.asarray(train_y), probs)
    return FeatureSet("k", train, val, val, tuple(classes), True, Path("none.npz"))


def blobs(counts, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    centres = rng.normal(size=(len(counts), dim)) * 4
    return centres[labels] + rng.normal(size=(labels.size, dim)), labels


def _no_silent_numbers(results) -> None:
    for result in results.values():
        assert (result.value is None) == (result.reason is not None), result


def test_a_class_with_a_single_sample_leaves_fisher_not_computed(make_config):
    x, y = blobs([10, 10, 1])
    results = transfer_scores(feature_set(x, y), make_config())
    _no_silent_numbers(results)
    assert results["fisher"].value is None
    assert "class with one sample" in results["fisher"].reason
    assert "class 2" in results["fisher"].reason
    # Scores that are defined for it still come out.
    assert results["logme"].value is not None


def test_nan_features_leave_every_score_not_computed_and_stop_the_probe(make_config):
    x, y = blobs([10, 10, 10])
    x[4, 2] = np.nan
    results = transfer_scores(feature_set(x, y), make_config())
    _no_silent_numbers(results)
    assert all(r.value is None and "NaN" in r.reason for r in results.values())
    with pytest.raises(AnalysisError, match="NaN"):
        analyse(make_config(), "unused", scratch=False, features=feature_set(x, y))


def test_fewer_than_two_classes(make_config):
    x, y = blobs([12])
    one = feature_set(x, y, classes=("only",))
    results = transfer_scores(one, make_config())
    _no_silent_numbers(results)
    assert all("at least 2 classes" in r.reason for r in results.values())
    # A data set of one class is bad data, named as such (the CLI names the section).
    with pytest.raises(DataError, match="has 1 class; the analysis needs at least 2"):
        analyse(make_config(), "unused", scratch=False, features=one)


def test_source_scores_say_what_they_need(make_config):
    x, y = blobs([10, 10, 10])
    results = transfer_scores(feature_set(x, y), make_config())
    assert "source_probs" in results["leep"].reason and "source_probs" in results["nce"].reason
    assert "analysis.source_sample" in results["emd"].reason
    probs = np.full((y.size, 4), 0.25)
    with_probs = transfer_scores(feature_set(x, y, probs=probs), make_config())
    assert with_probs["leep"].value is not None and with_probs["nce"].value is not None


def test_an_unknown_score_name_is_an_error_listing_the_known_ones(make_config):
    x, y = blobs([10, 10, 10])
    with pytest.raises(AnalysisError, match="Known scores: .*fisher"):
        transfer_scores(feature_set(x, y), make_config(analysis={"scores": ["fishr"]}))


def test_subsample_keeps_every_class_in_proportion():
    labels = np.repeat([0, 1, 2], [1000, 100, 3])
    rows = stratified_subsample(labels, 110, seed=0)
    counts = np.bincount(labels[rows])
    assert counts[0] == 100 and counts[1] == 10 and counts[2] == 2
    assert np.array_equal(rows, stratified_subsample(labels, 110, seed=0))
    assert stratified_subsample(labels, None).size == labels.size


def test_emd_with_a_source_sample(make_config):
    source = {
        "kind": "synthetic",
        "num_workers": 0,
        "synthetic": {"task": "colour", "num_classes": 4, "samples_per_class": 6},
    }
    config = make_config(analysis={"source_sample": source, "scores": ["emd", "fisher"]})
    from nonbinary_ft.analysis import extract_features

    results = transfer_scores(extract_features(config, progress=False), config)
    assert 0.0 < results["emd"].value <= 1.0
    assert list(results) == ["emd", "fisher"]


def test_a_source_folder_path_is_an_image_folder(make_config, tmp_path):
    from PIL import Image

    from nonbinary_ft.analysis import extract_features

    rng = np.random.default_rng(0)
    for label, level in (("cat", 40), ("dog", 200)):
        folder = tmp_path / "source" / "train" / label
        folder.mkdir(parents=True)
        for i in range(5):
            pixels = np.clip(level + rng.normal(scale=20, size=(16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    config = make_config(analysis={"source_sample": str(tmp_path / "source"), "scores": ["emd"]})
    assert config.analysis.source_sample.kind == "imagefolder"
    results = transfer_scores(extract_features(config, progress=False), config)
    assert 0.0 < results["emd"].value <= 1.0
