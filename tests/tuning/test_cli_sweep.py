"""``nbft sweep``: bad files fail with exit 2 before Ray starts; --dry-run plans without Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
import yaml
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config import load_config
from nonbinary_ft.results import jsonable
from nonbinary_ft.tuning.plan import plan_sweep

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
RANGE = {"name": "lr", "parameters": {"lr_high": {"type": "float", "low": 0.01, "high": 0.1}}}
GRID = {"name": "g", "parameters": {"lr_high": {"type": "grid", "values": [0.01, 0.02]}}}


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if anything tries to start or join a Ray cluster."""

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("sweep", "key", "expected"),
    [
        ({"space": GRID, "budget": {"num_sample": 3}}, "sweep.budget.num_sample", "not a known"),
        ({"space": GRID, "resources": {"gpus": "half"}}, "sweep.resources.gpus", "number"),
        (
            {
                "space": {
                    "name": "s",
                    "parameters": {"reinit_layers": {"type": "int", "low": 7, "high": 9}},
                }
            },
            "sweep.space.parameters.reinit_layers",
            "at most 5",
        ),
        (
            {
                "space": {
                    "name": "s",
                    "parameters": {"dropout": {"type": "grid", "values": [0.1]}},
                },
                "search": {"algorithm": "grid"},
            },
            "sweep.space.parameters.dropout",
            "a trial setting",
        ),
        (
            {
                "space": {
                    "name": "s",
                    "parameters": {"lr_high": {"type": "float", "low": 1, "high": 0.1}},
                }
            },
            "sweep.space.parameters.lr_high",
            "<= high",
        ),
        ({"space": "missing.yaml"}, "sweep.space", "an existing search-space file"),
        ({"space": GRID}, "sweep.space.parameters.lr_high", "only 'grid' runs grids"),
        ({"space": [GRID, GRID]}, "sweep.space", "a single space unless"),
    ],
)
def test_bad_sweep_files_exit_2_before_ray_starts(
    tmp_path, make_document, no_ray, sweep, key, expected
):
    path = _write(tmp_path, make_document(tmp_path, **sweep))
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2, result.output
    message = result.stderr.replace("\n", "")
    # (a range's own bound is reported below the key: 'parameters.lr_high.low')
    assert str(path) in message and f"'{key}" in message and expected in message
    assert not (tmp_path / "runs").exists()


def test_resume_without_a_sweep_and_a_second_start_exit_2(tmp_path, make_document, no_ray):
    path = _write(tmp_path, make_document(tmp_path, space=GRID, search={"algorithm": "grid"}))
    result = runner.invoke(app, ["sweep", str(path), "--resume"])
    assert result.exit_code == 2 and "'--resume'" in result.stderr
    (tmp_path / "runs" / "tiny" / "search").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "search" / "tuner.pkl").write_bytes(b"")
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2 and "--resume to continue" in result.stderr.replace("\n", "")


def test_dry_run_prints_the_plan_without_ray(tmp_path, make_document, no_ray):
    path = _write(
        tmp_path,
        make_document(tmp_path, space=GRID, search={"algorithm": "grid"}, resources={"gpus": 0.25}),
    )
    result = runner.invoke(app, ["sweep", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["num_trials"] == 2 and plan["resources_per_trial"] == {"CPU": 1.0, "GPU": 0.25}
    assert plan["estimate"]["gpu_hours"] > 0
    table = runner.invoke(app, ["sweep", str(path), "--dry-run"], env={"COLUMNS": "120"})
    assert table.exit_code == 0
    assert "search trials" in table.stdout and "GPU-hours" in table.stdout
    assert "lr_high" in table.stdout  # the resolved space
    # Search 'grid' does not act on stage 1's evidence: it runs after the search.
    assert plan["stage_one"] == "after_search" and "after the search" in table.stdout
    assert not (tmp_path / "runs").exists()


def test_set_overrides_the_sweep_file_and_a_typo_is_refused(tmp_path, make_document, no_ray):
    path = _write(tmp_path, make_document(tmp_path, space=RANGE, budget={"num_samples": 4}))
    command = ["sweep", str(path), "--dry-run", "--json"]
    overrides = ["--set", "sweep.budget.num_samples=9", "--set", "train.epochs=5"]
    result = runner.invoke(app, [*command, *overrides])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["num_trials"] == 9 and plan["estimate"]["epochs_per_trial"] == 5
    typo = runner.invoke(app, [*command, "--set", "sweep.budget.num_sample=9"])
    assert typo.exit_code == 2 and "num_samples" in typo.stderr
    # An override given through its own option is refused under that option's name.
    empty = runner.invoke(app, [*command, "--register", ""])
    assert empty.exit_code == 2 and "--register: 'sweep.mlflow.register_as'" in empty.stderr


def test_the_version_is_printed():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"nbft {version('nonbinary-ft')}"


# Optima from the paper's tables 2 and 4, which each file's grids must contain.
PAPER = {
    "caltech256": (0.0025, 0.002, 0.001),
    "stanford_cars": (0.025, 0.025, 0.01),
    "fgvc_aircraft": (0.025, 0.025, 0.015),
    "dtd": (0.002, 0.0025, 0.0015),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_sweep_files_plan_on_inception_v4(name, no_ray):
    path = REPO / "sweeps" / "paper" / f"{name}.yaml"
    document = yaml.safe_load(path.read_text())
    assert document["model"] == {"name": "inception_v4", "pretrained": "hub", "image_size": 299}
    assert document["data"]["download"] is False
    assert document["data"]["root"] == f"/data/{name}"
    plan = json.loads(json.dumps(jsonable(plan_sweep(load_config(path), path).to_dict())))
    assert plan["model"] == "inception_v4" and plan["num_layers"] == 21
    assert plan["algorithm"] == "grid" and plan["resources_per_trial"]["GPU"] == 1.0
    single, high, low = PAPER[name]
    points = plan["grid_points"]
    figure1 = {p["lr_high"] for p in points if p["reinit_layers"] == 1 and p["lr_low"] is None}
    assert single in figure1
    assert {p["reinit_layers"] for p in points} == {1, 2, 3}  # figure 2
    assert any(p["lr_high"] == high and p["lr_low"] == low and p["low_layers"] > 0 for p in points)
    assert any(p["l2sp_layers"] == "all" for p in points)  # figure 4
    assert len({p["l2sp_layers"] for p in points}) > 5  # figure 5
    assert plan["estimate"]["gpu_hours"] > 100  # 200 epochs per trial on one GPU
    # Planned on a machine without the data (they are on the cluster): a warning, a plan.
    result = runner.invoke(app, ["sweep", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.stdout)["warnings"]
    assert f"/data/{name}" in warning


def test_quickstart_sweep_plans(no_ray):
    result = runner.invoke(
        app, ["sweep", str(REPO / "sweeps" / "quickstart.yaml"), "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["algorithm"] == "zero_shot_model" and plan["num_trials"] == 6
    assert plan["spaces"][0]["name"] == "paper_full"


def test_live_display_fits_one_screen():
    import io

    from rich.console import Console

    from nonbinary_ft.cli.sweep_view import SweepDisplay
    from nonbinary_ft.tuning.progress import SweepProgress, TrialRow

    rows = tuple(
        TrialRow(f"t{i:02d}", "running" if i < 4 else "completed", 1, 0.5, {"lr_high": 0.01})
        for i in range(40)
    )
    progress = SweepProgress(
        "search", 40, {"running": 4, "completed": 36}, 0.5, "t00", {"lr_high": 0.01}, 12.0, rows
    )
    console = Console(file=io.StringIO(), width=100, height=24)
    console.print(SweepDisplay(console, "tiny").render(progress))
    screen = console.file.getvalue().splitlines()
    assert len(screen) <= 24
    assert "search: 36/40 done" in screen[1] and "more" in "".join(screen)
    assert "t00" in "".join(screen)  # running trials come first
