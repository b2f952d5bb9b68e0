"""Where a sweep finds its history: the prior of a fresh install, the user's store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from nonbinary_ft.history.record import history_tags
from nonbinary_ft.history.store import (
    PRIOR_DIR,
    read_prior,
    read_user_store,
    record_sweep,
    unique,
    user_store,
)
from nonbinary_ft.history.table import CURVES_FILE
from tests.reporting.sweep_fixtures import make_results


def test_a_finished_sweep_is_kept_in_the_user_store_and_read_back(tmp_path):
    tags = history_tags(make_results(), "test_resnet")
    path = record_sweep(tags, "my sweep/1", "run123", tmp_path)
    assert path is not None and path.parent == tmp_path and "/" not in path.name
    (past,) = read_user_store(tmp_path)
    assert (past.name, past.source) == ("my sweep/1", "run123")
    assert past.origin == f"user store {path}"
    assert past.evidence.fisher == pytest.approx(1.6)


def test_the_user_store_is_found_without_configuration(monkeypatch, tmp_path):
    monkeypatch.delenv("NBFT_HISTORY_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_store() == tmp_path / "nbft" / "history"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_store() == tmp_path / "home" / ".local" / "share" / "nbft" / "history"


def test_a_bad_record_is_skipped_with_its_name_and_a_bad_store_loses_nothing(tmp_path, caplog):
    tags = history_tags(make_results(), "m")
    record_sweep(tags, "good", "run1", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "odd.json").write_text(json.dumps({"name": "odd", "run_id": "x", "tags": {}}))
    with caplog.at_level("WARNING"):
        history = read_user_store(tmp_path)
    assert [past.name for past in history] == ["good"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "broken.json" in warned and "odd.json" in warned
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with caplog.at_level("WARNING"):
        assert record_sweep(tags, "good", "run2", blocked) is None
    assert "could not keep this sweep" in caplog.text


def test_one_sweep_seen_in_two_histories_counts_once(tmp_path):
    tags = history_tags(make_results(), "m")
    record_sweep(tags, "a", "run1", tmp_path)
    record_sweep(tags, "b", "run2", tmp_path)
    twice = read_user_store(tmp_path) * 2
    assert sorted(p.source for p in unique(twice)) == ["run1", "run2"]
    assert [p.source for p in unique(twice, exclude="run1")] == ["run2"]


def test_the_prior_ships_with_the_package():
    tables = sorted(path.parent.name for path in PRIOR_DIR.glob(f"*/{CURVES_FILE}"))
    assert tables, "no table in the prior"
    prior = read_prior()
    assert sorted(past.name for past in prior) == tables
    assert all(past.origin == "prior" and past.ranked for past in prior)


@pytest.mark.slow
def test_the_prior_and_the_manifests_are_found_by_a_fresh_install(tmp_path):
    """The wheel carries the prior and k8s/: installed alone into a folder, away from any
    checkout, it reads the same tables and renders a sweep's manifests."""
    root = PRIOR_DIR.parents[2]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("nonbinary_ft-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    script = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from nonbinary_ft.history.store import PRIOR_DIR, read_prior
        print(json.dumps({"dir": str(PRIOR_DIR), "names": sorted(p.name for p in read_prior())}))
        """
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(target)], cwd=tmp_path, check=True,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    document = json.loads(found.stdout)
    assert document["dir"].startswith(str(target))
    assert document["names"] == sorted(past.name for past in read_prior())
    render = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from nonbinary_ft.deploy import default_k8s_dir, render_sweep
        print(default_k8s_dir())
        print(render_sweep(sys.argv[2], "dev").manifests)
        """
    )
    quickstart = root / "sweeps" / "quickstart.yaml"
    rendered = subprocess.run(
        [sys.executable, "-c", render, str(target), str(quickstart)], cwd=tmp_path, check=True,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    shipped, manifests = rendered.stdout.split("\n", 1)
    assert shipped.startswith(str(target)) and "kind: RayJob" in manifests


@pytest.fixture(scope="module")
def store_of_a_module_fixture():
    """Where a module-scoped fixture (a sweep shared by several tests) records its sweeps."""
    return user_store()


def test_a_module_fixture_records_outside_the_users_store(
    store_of_a_module_fixture, tmp_path_factory
):
    # Under pytest's temporary folder, never ~/.local/share/nbft/history: the tests' sweeps
    # must not become the user's history.
    assert store_of_a_module_fixture.is_relative_to(tmp_path_factory.getbasetemp())
