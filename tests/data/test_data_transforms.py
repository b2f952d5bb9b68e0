"""timm transforms follow the model's own input size and normalisation."""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data import build_datasets, create_transforms
from nonbinary_ft.errors import ConfigError

WHITE = Image.new("RGB", (20, 12), (255, 255, 255))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return timm.create_model("resnet18", pretrained=False, num_classes=3)


def test_eval_output_has_the_model_input_size(model: torch.nn.Module) -> None:
    _, evaluate = create_transforms(DataConfig(kind="digits"), model)
    assert evaluate(WHITE).shape == (3, 224, 224)


def test_image_size_overrides_both_transforms(model: torch.nn.Module) -> None:
    train, evaluate = create_transforms(DataConfig(kind="digits"), model, image_size=40)
    assert evaluate(WHITE).shape == (3, 40, 40)
    assert train(WHITE).shape == (3, 40, 40)


def test_normalisation_uses_the_model_mean_and_std(model: torch.nn.Module) -> None:
    _, imagenet = create_transforms(DataConfig(kind="digits"), model, image_size=16)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(imagenet(WHITE)[:, 8, 8], expected)

    half = timm.create_model("resnet18", pretrained=False, num_classes=3)
    half.pretrained_cfg = {**half.pretrained_cfg, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    _, evaluate = create_transforms(DataConfig(kind="digits"), half, image_size=16)
    torch.testing.assert_close(evaluate(WHITE), torch.ones(3, 16, 16))


def test_augmentation_options_reach_the_train_transform(model: torch.nn.Module) -> None:
    cfg = DataConfig(kind="digits", auto_augment="rand-m9-mstd0.5", re_prob=0.5)
    train, _ = create_transforms(cfg, model, image_size=24)
    text = repr(train)
    assert "RandAugment" in text and "RandomErasing" in text
    plain, _ = create_transforms(DataConfig(kind="digits"), model, image_size=24)
    assert "RandAugment" not in repr(plain) and "RandomErasing" not in repr(plain)


def test_unknown_policy_is_a_config_error(model: torch.nn.Module) -> None:
    with pytest.raises(ConfigError, match="data.auto_augment"):
        create_transforms(DataConfig(kind="digits", auto_augment="nonsense-x"), model)


def test_datasets_yield_model_sized_tensors(model: torch.nn.Module) -> None:
    cfg = DataConfig(kind="digits", max_train_per_class=2)
    train_tf, eval_tf = create_transforms(cfg, model, image_size=32)
    splits = build_datasets(cfg, train_tf, eval_tf)

    image, label = splits.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert isinstance(label, int) and splits.classes[label] == str(label)
    assert splits.val[0][0].shape == (3, 32, 32)
    assert len(splits.train) == 20
