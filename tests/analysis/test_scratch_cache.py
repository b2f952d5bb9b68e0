"""The from-scratch baseline is cached by content key, like the features: a second analysis of
the same target reads it back instead of training, and anything that changes what the run
learns trains it again."""

from __future__ import annotations

import pytest

from nonbinary_ft.analysis import scratch
from nonbinary_ft.analysis.scratch import scratch_baseline, scratch_config, scratch_key
from nonbinary_ft.errors import ConfigError


@pytest.fixture
def trainings(monkeypatch) -> list[str]:
    """The from-scratch runs actually trained (their experiment names)."""
    trained: list[str] = []
    real = scratch._train

    def counted(run, workdir, data):
        trained.append(run.name)
        return real(run, workdir, data)

    monkeypatch.setattr(scratch, "_train", counted)
    return trained


def test_a_second_run_on_the_same_target_is_read_back(make_config, tmp_path, trainings):
    config = make_config()
    first = scratch_baseline(config, tmp_path / "a")
    again = scratch_baseline(config, tmp_path / "b")
    assert len(trainings) == 1
    assert again.to_dict() == first.to_dict() and again.curve == first.curve
    assert first.status == "completed" and len(first.curve) == 1
    # Where it runs and how fast never changes what it learns: still a hit.
    moved = make_config(train={"device": "cpu", "amp": False}, data={"num_workers": 0})
    assert scratch_baseline(moved, tmp_path / "c").to_dict() == first.to_dict()
    assert len(trainings) == 1


@pytest.mark.parametrize(
    "patch",
    [
        {"data": {"split_seed": 1}},  # other images in each split
        {"analysis": {"scratch": {"epochs": 2}}},  # another budget
        {"train": {"seed": 1}},  # another init
        {"settings": {"beta": 0.01}},  # another weight decay
        {"data": {"synthetic": {"seed": 3}}},  # other generated images
    ],
)
def test_what_changes_the_run_trains_it_again(make_config, tmp_path, trainings, patch):
    base = make_config()
    changed = make_config(**patch)
    assert scratch_key(scratch_config(changed)) != scratch_key(scratch_config(base))
    scratch_baseline(base, tmp_path / "a")
    scratch_baseline(changed, tmp_path / "b")
    assert len(trainings) == 2


def test_a_cache_folder_under_a_file_is_refused_before_training(make_config, tmp_path, trainings):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = make_config(analysis={"cache_dir": str(blocker / "cache")})
    with pytest.raises(ConfigError, match="analysis.cache_dir") as refused:
        scratch_baseline(config, tmp_path / "run")
    assert "is a file" in str(refused.value) and not trainings
