"""The feature cache: hits return the same arrays, any changed input is a new key, float16."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import timm
import torch

from nonbinary_ft.analysis import extract_features
from nonbinary_ft.analysis.cache import content_key
from nonbinary_ft.analysis.features import SPLITS
from nonbinary_ft.errors import AnalysisError, ModelError


def _same(first, second) -> None:
    for name in SPLITS:
        a, b = getattr(first, name), getattr(second, name)
        assert np.array_equal(a.features, b.features)
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.source_probs, b.source_probs)


def test_second_extraction_is_a_hit_with_identical_arrays(make_config, caplog):
    config = make_config()
    caplog.set_level(logging.INFO, logger="nonbinary_ft.analysis.features")
    first = extract_features(config, progress=False)
    assert not first.cache_hit and first.path.is_file()
    second = extract_features(config, progress=False)
    assert second.cache_hit and second.key == first.key
    assert f"features: cache hit {first.key}" in caplog.text
    _same(first, second)
    # What the arrays hold: 96-dim pooled features of test_resnet, 5-way source softmax.
    assert first.train.features.shape[1] == 96 and first.dim == 96
    assert first.train.source_probs.shape == (first.train.labels.size, 5)
    assert np.allclose(first.train.source_probs.sum(axis=1), 1.0, atol=2e-3)
    assert first.train.labels.size + first.val.labels.size + first.test.labels.size == 60


def test_stored_as_float16(make_config):
    features = extract_features(make_config(), progress=False)
    with np.load(features.path) as stored:
        assert stored["train_features"].dtype == np.float16
        assert stored["val_source_probs"].dtype == np.float16
        assert stored["test_labels"].dtype == np.int64
    assert features.path.with_suffix(".json").is_file()


def test_features_are_the_backbone_pre_logits(make_config, checkpoint):
    """The cached rows are forward_head(pre_logits=True) of the eval-transformed images."""
    config = make_config()
    features = extract_features(config, progress=False)
    model = timm.create_model("test_resnet", num_classes=5)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    from nonbinary_ft.data import build_datasets, create_transforms

    _, eval_tf = create_transforms(config.data, model, 32)
    image, _ = build_datasets(config.data, eval_tf, eval_tf).val[0]
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(image[None]), pre_logits=True)
    assert np.allclose(features.val.features[0], expected[0].numpy(), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    "patch",
    [
        {"model": {"image_size": 40}},
        {"data": {"split_seed": 1}},
        {"data": {"synthetic": {"seed": 7}}},
        {"data": {"max_train_per_class": 5}},
    ],
    ids=["image_size", "split_seed", "generator_seed", "train_cap"],
)
def test_a_changed_input_is_a_new_key(make_config, patch):
    base = extract_features(make_config(), progress=False)
    changed = extract_features(make_config(**patch), progress=False)
    assert changed.key != base.key and not changed.cache_hit


def test_loader_only_settings_keep_the_key(make_config):
    base = extract_features(make_config(), progress=False)
    again = extract_features(
        make_config(data={"batch_size": 4, "re_prob": 0.5}, analysis={"batch_size": 7}),
        progress=False,
    )
    assert again.cache_hit and again.key == base.key
    _same(base, again)


def test_new_checkpoint_content_under_the_same_path_is_a_new_key(
    make_config, checkpoint, write_checkpoint
):
    base = extract_features(make_config(), progress=False)
    write_checkpoint(checkpoint, seed=2)  # retrained weights, same file name
    changed = extract_features(make_config(), progress=False)
    assert changed.key != base.key and not changed.cache_hit
    assert not np.array_equal(changed.train.features, base.train.features)


def test_random_init_features_are_reproducible_and_have_no_source_head(make_config):
    config = make_config(model={"pretrained": "none", "checkpoint": None})
    first = extract_features(config, progress=False)
    assert first.train.source_probs is None
    first.path.unlink()  # force a second extraction, not a hit
    second = extract_features(config, progress=False)
    assert not second.cache_hit
    _same(first, second)
    other_seed = extract_features(
        make_config(model={"pretrained": "none", "checkpoint": None}, train={"seed": 5}),
        progress=False,
    )
    assert other_seed.key != first.key


def test_nan_weights_are_a_clear_error_and_nothing_is_cached(make_config, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["conv1.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, checkpoint)
    with pytest.raises(AnalysisError, match="NaN or infinite"):
        extract_features(make_config(), progress=False)
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_missing_checkpoint_is_a_model_error(make_config, checkpoint):
    checkpoint.unlink()
    with pytest.raises(ModelError, match="checkpoint file not found"):
        extract_features(make_config(), progress=False)


def test_a_corrupt_cache_entry_is_rebuilt(make_config):
    first = extract_features(make_config(), progress=False)
    first.path.write_bytes(b"not a zip")
    again = extract_features(make_config(), progress=False)
    assert not again.cache_hit
    _same(first, again)


def test_content_key_is_canonical():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
