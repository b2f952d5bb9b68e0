"""The controlled transfer suite: built as designed, and the analysis reads it right.

The slow tests build the "small" suite once per session into pytest's cache folder (the
source checkpoint is keyed by content, so later sessions reuse it), then check that the
analysis predicts each target's regime from the gap and that the predicted regime's
recommended settings beat the opposite regime's on that target.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from benchmarks.suite import (
    EXPECTED_REGIMES,
    RegimeComparison,
    SuiteSpec,
    TransferSuite,
    build_suite,
    compare_regimes,
    make_colour_blind,
    pretrain_source,
    source_config,
    source_key,
    target_config,
)
from nonbinary_ft.analysis import AnalysisReport, analyse
from nonbinary_ft.config import SyntheticConfig
from nonbinary_ft.data import generate_images
from nonbinary_ft.errors import ConfigError, ModelError

OPPOSITE = {"fits_well": "fits_poorly", "fits_poorly": "fits_well"}


# ---------------------------------------------------------------- construction (fast)


def _shape_pixels(image) -> np.ndarray:
    """RGB values of the pixels of the shape (brighter than any background grey level)."""
    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    return pixels[pixels.mean(axis=1) > 125]


def test_isoluminant_colours_hide_the_hue_from_brightness() -> None:
    images, labels = generate_images("colour", 6, 40, 32, seed=0, colour_mode="isoluminant")
    brightness = np.array([_shape_pixels(im).mean() for im in images])
    per_class = [brightness[labels == c].mean() for c in range(6)]
    # 'hue' mode differs by ~20 grey levels between primary and secondary hues; here the
    # class means agree within the noise of 40 draws.
    assert max(per_class) - min(per_class) < 4.0
    chroma = np.array([np.ptp(_shape_pixels(im).mean(axis=0)) for im in images])
    assert chroma.min() > 30  # the hue is still plainly there for a colour-seeing model


def test_grey_shapes_have_no_colour_and_cannot_carry_colour_labels() -> None:
    images, _ = generate_images("shape", 3, 4, 16, seed=0, colour_mode="grey")
    for image in images:
        pixels = np.asarray(image)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    with pytest.raises(ValueError, match="grey shapes carry no colour label"):
        generate_images("colour", 3, 4, 16, seed=0, colour_mode="grey")
    with pytest.raises(ValidationError, match="colour_mode"):
        SyntheticConfig(task="colour", colour_mode="grey")


def test_colour_blind_stem_keeps_grey_responses_and_drops_chroma() -> None:
    torch.manual_seed(0)
    state = {"stem.weight": torch.randn(8, 3, 3, 3), "head.weight": torch.randn(2, 8)}
    blind = make_colour_blind(state, "stem")

    def response(image: torch.Tensor, weights: dict) -> torch.Tensor:
        return F.conv2d(image, weights["stem.weight"])

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        # Summation order differs between the two weights: compare up to rounding.
        return torch.allclose(a, b, atol=1e-5)

    grey = torch.rand(2, 1, 12, 12).expand(2, 3, 12, 12)
    assert close(response(grey, state), response(grey, blind))
    # Two images with the same brightness (channel mean) but opposite hues look the same.
    brightness = torch.rand(1, 1, 12, 12)
    chroma = torch.tensor([0.2, -0.1, -0.1]).view(1, 3, 1, 1)
    red, cyan = brightness + chroma, brightness - chroma
    assert close(response(red, blind), response(cyan, blind))
    assert not close(response(red, state), response(cyan, state))
    assert blind["head.weight"] is state["head.weight"]  # only the stem changes


def test_colour_blinding_names_a_missing_stem() -> None:
    with pytest.raises(ModelError, match="'conv1.weight'"):
        make_colour_blind({"fc.weight": torch.zeros(2, 4)}, "conv1")


def test_targets_differ_only_in_the_labelled_factor_and_training_cap(tmp_path: Path) -> None:
    spec = SuiteSpec()
    near = target_config(spec, "near", tmp_path / "source.pt", tmp_path)
    far = target_config(spec, "far", tmp_path / "source.pt", tmp_path)

    assert (near.data.synthetic.task, far.data.synthetic.task) == ("new_shape", "colour")
    assert near.data.synthetic.colour_mode == far.data.synthetic.colour_mode == "isoluminant"
    assert near.data.max_train_per_class == spec.near_train_per_class
    differing = {"synthetic", "max_train_per_class"}
    for field in set(type(near.data).model_fields) - differing:
        assert getattr(near.data, field) == getattr(far.data, field), field
    assert near.model == far.model and near.model.pretrained == "checkpoint"
    assert near.train == far.train and near.settings == far.settings
    assert near.analysis.scratch.epochs == near.train.epochs  # the same small budget
    assert near.analysis.source_sample.synthetic.colour_mode == "grey"


def test_unknown_size_or_target_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'size' must be one of full, small"):
        build_suite("tiny", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'target' must be 'near' or 'far'"):
        target_config(SuiteSpec(), "middle", tmp_path / "source.pt", tmp_path)


# ---------------------------------------------------------------- the suite (slow)


@pytest.fixture(scope="module")
def suite(request: pytest.FixtureRequest) -> TransferSuite:
    """The small suite, cached across sessions under pytest's cache folder."""
    return build_suite("small", request.config.cache.mkdir("nbft-transfer-suite"))


@pytest.fixture(scope="module")
def reports(
    suite: TransferSuite, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], AnalysisReport]:
    """``analyse`` of each target, computed once (it trains a from-scratch baseline)."""
    cache: dict[str, AnalysisReport] = {}

    def report(name: str) -> AnalysisReport:
        if name not in cache:
            workdir = tmp_path_factory.mktemp(f"analysis-{name}")
            cache[name] = analyse(suite.target(name), workdir)
        return cache[name]

    return report


@pytest.mark.slow
def test_source_learns_shapes_and_a_rebuild_is_a_cache_hit(
    suite: TransferSuite, request: pytest.FixtureRequest
) -> None:
    # 10 grey shapes; chance is 0.1.
    assert suite.source.val_accuracy > 0.75
    again = build_suite("small", request.config.cache.mkdir("nbft-transfer-suite"))
    assert again.source.cache_hit and again.source.checkpoint == suite.source.checkpoint
    assert again.near == suite.near and again.far == suite.far


@pytest.mark.slow
def test_a_hue_source_learns_colour_and_keeps_its_stems_chroma(
    suite: TransferSuite, tmp_path: Path
) -> None:
    hue = SuiteSpec(
        source_task="colour", source_colour_mode="isoluminant", source_samples_per_class=16,
        source_epochs=3,
    )  # fmt: skip
    synthetic = source_config(hue).data.synthetic
    assert (synthetic.task, synthetic.colour_mode) == ("colour", "isoluminant")
    assert source_key(hue) != suite.source.key
    source = pretrain_source(hue, tmp_path)
    assert source.val_accuracy > 0.2  # 10 hues; chance is 0.1
    stem = torch.load(source.checkpoint)["conv1.0.weight"]
    # A source that saw colour keeps what its stem learnt of it; the grey source's stem
    # was averaged over its input channels.
    assert not torch.allclose(stem[:, 0], stem[:, 1])
    grey_stem = torch.load(suite.source.checkpoint)["conv1.0.weight"]
    assert torch.equal(grey_stem[:, 0], grey_stem[:, 1])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["near", "far"])
def test_analysis_predicts_the_regime_built_into_each_target(reports, target: str) -> None:
    report = reports(target)
    evidence, regime = report.evidence, report.regime

    assert regime.label == EXPECTED_REGIMES[target], regime.rule
    assert regime.decided_by == "gap" and not regime.provisional
    chance = evidence.chance_accuracy
    if target == "near":
        # The source's shape features separate new shapes; a tiny budget from scratch cannot.
        assert evidence.gap < -0.3
        assert evidence.fixed_accuracy > 0.8
    else:
        # The colour-blind features know nothing of the hue: the probe stays near chance.
        assert evidence.gap > 0.3
        assert evidence.fixed_accuracy < chance + 0.15
        assert evidence.scratch_accuracy > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("target", ["near", "far"])
def test_predicted_regime_settings_beat_the_opposite_regime(
    suite: TransferSuite, reports, target: str
) -> None:
    report = reports(target)
    predicted = report.regime.label
    comparison: RegimeComparison = compare_regimes(
        suite.target(target), seeds=(0, 1, 2), num_layers=report.num_layers
    )
    ours, theirs = comparison.runs[predicted], comparison.runs[OPPOSITE[predicted]]

    # The runs used exactly the settings the analysis recommends.
    assert ours.settings == report.recommendation.settings.model_dump(mode="json")
    summary = comparison.to_dict()
    assert ours.mean_test > theirs.mean_test + 0.05, summary
    assert ours.mean_val > theirs.mean_val + 0.05, summary
