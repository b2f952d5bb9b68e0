"""Loading pre-trained weights: bundled ImageNet weights, checkpoint files, bad files."""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo

from nonbinary_ft.config import DataConfig, ModelConfig
from nonbinary_ft.data import create_transforms
from nonbinary_ft.errors import ConfigError, ModelError
from nonbinary_ft.models.loading import create_backbone


def _save_model(path, name="test_resnet", num_classes=7, seed=1):
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    torch.save(model.state_dict(), path)
    return model


def test_checkpoint_loads_everything_but_the_head(tmp_path):
    source = _save_model(tmp_path / "source.pt", num_classes=7)
    config = ModelConfig(
        name="test_resnet", pretrained="checkpoint", checkpoint=tmp_path / "source.pt"
    )
    model = create_backbone(config, num_classes=3)
    assert model.num_classes == 3
    expected = source.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            assert value.shape[0] == 3
        else:
            assert torch.equal(value, expected[key]), key


def test_checkpoint_keeps_the_source_head_when_asked(tmp_path):
    source = _save_model(tmp_path / "source.pt", num_classes=7)
    config = ModelConfig(
        name="test_resnet", pretrained="checkpoint", checkpoint=tmp_path / "source.pt"
    )
    model = create_backbone(config, num_classes=None)
    assert model.num_classes == 7
    assert torch.equal(model.fc.weight, source.fc.weight)


def test_wrapped_checkpoint_is_unwrapped(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False, num_classes=2)
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    config = ModelConfig(
        name="test_resnet", pretrained="checkpoint", checkpoint=tmp_path / "wrapped.pt"
    )
    model = create_backbone(config, num_classes=2)
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda p: torch.save([1, 2, 3], p), "is not a state dict"),
        (lambda p: torch.save(torch.zeros(3), p), "is not a state dict"),
        (lambda p: p.write_bytes(b"definitely not a checkpoint"), "cannot be read"),
    ],
)
def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    content(path)
    config = ModelConfig(name="test_resnet", pretrained="checkpoint", checkpoint=path)
    with pytest.raises(ModelError, match=message) as info:
        create_backbone(config, num_classes=2)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    _save_model(tmp_path / "effnet.pt", name="test_efficientnet")
    config = ModelConfig(
        name="test_resnet", pretrained="checkpoint", checkpoint=tmp_path / "effnet.pt"
    )
    with pytest.raises(ModelError, match="do not fit"):
        create_backbone(config, num_classes=2)


def test_missing_checkpoint_file(tmp_path):
    config = ModelConfig(name="test_resnet", pretrained="checkpoint", checkpoint=tmp_path / "x.pt")
    with pytest.raises(ModelError, match="not found"):
        create_backbone(config, num_classes=2)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ConfigError) as info:
        create_backbone(ModelConfig(name="resnet5O", pretrained="none"), num_classes=2)
    assert info.value.field == "model.name"
    assert "resnet50" in str(info.value)


def test_bundled_weights_only_for_lite0():
    with pytest.raises(ConfigError, match="tf_efficientnet_lite0"):
        create_backbone(ModelConfig(name="resnet18", pretrained="bundled"), num_classes=2)


@pytest.mark.slow
def test_bundled_weights_recognise_a_daisy():
    """Real ImageNet weights through the project's own preprocessing (mean = std = 0.5)."""
    model = create_backbone(
        ModelConfig(name="tf_efficientnet_lite0", pretrained="bundled"), num_classes=None
    ).eval()
    _, eval_transform = create_transforms(DataConfig(kind="digits"), model)
    images = load_sample_images()
    flower = Image.fromarray(
        images.images[
            images.filenames.index(next(f for f in images.filenames if f.endswith("flower.jpg")))
        ]
    )
    with torch.no_grad():
        top5 = model(eval_transform(flower)[None]).topk(5).indices[0].tolist()
    names = [ImageNetInfo().index_to_description(i) for i in top5]
    assert "daisy" in names, names


def test_bundled_weights_differ_from_random_init():
    bundled = create_backbone(ModelConfig(name="tf_efficientnet_lite0", pretrained="bundled"), 5)
    random = create_backbone(ModelConfig(name="tf_efficientnet_lite0", pretrained="none"), 5)
    assert not torch.equal(bundled.conv_stem.weight, random.conv_stem.weight)
    assert bundled.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)
