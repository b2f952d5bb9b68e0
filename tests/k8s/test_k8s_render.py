"""`nbft k8s render`: the manifests of one sweep, validated; bad input exits 2 with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_helpers import REPO, parse_documents, validate
from typer.testing import CliRunner

from nonbinary_ft.cli.main import app
from nonbinary_ft.config import load_config
from nonbinary_ft.deploy.render import rayjob_name

runner = CliRunner()
QUICKSTART = REPO / "sweeps" / "quickstart.yaml"


def _render(*args: str) -> Any:
    return runner.invoke(app, ["k8s", "render", *args])


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _embedded_sweep(docs: list[dict[str, Any]], rayjob: dict[str, Any]) -> tuple[str, Path]:
    """The sweep file the RayJob's entrypoint runs, read through the head's volume mounts."""
    entrypoint = rayjob["spec"]["entrypoint"].split()
    assert entrypoint[:2] == ["nbft", "sweep"], entrypoint
    target = Path(entrypoint[2])
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    (mount,) = [
        m for m in head["containers"][0]["volumeMounts"] if m["mountPath"] == str(target.parent)
    ]
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    (config_map,) = [
        d
        for d in _by_kind(docs, "ConfigMap")
        if d["metadata"]["name"] == volume["configMap"]["name"]
    ]
    return config_map["data"][target.name], target


def test_render_quickstart_runs_nbft_sweep_on_the_embedded_file(tmp_path):
    result = _render(str(QUICKSTART))
    assert result.exit_code == 0, result.output
    docs = parse_documents(result.stdout)
    for doc in docs:
        validate(doc)
    (rayjob,) = _by_kind(docs, "RayJob")
    assert rayjob["metadata"]["name"] == "nbft-quickstart"
    text, target = _embedded_sweep(docs, rayjob)
    assert target == Path("/config/sweep.yaml")

    # The embedded file is the quickstart, valid, self-contained and pointed at the cluster.
    embedded = tmp_path / "sweep.yaml"
    embedded.write_text(text)
    config = load_config(embedded)
    original = load_config(QUICKSTART)
    assert config.name == original.name and config.model == original.model
    assert config.data == original.data and config.settings == original.settings
    assert config.sweep.search == original.sweep.search
    assert config.sweep.budget == original.sweep.budget
    assert isinstance(config.sweep.space, dict) and config.sweep.space["parameters"]
    (cluster,) = [
        d for d in _by_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("nbft-cluster-")
    ]
    settings = cluster["data"]
    assert config.sweep.storage.path == settings["NBFT_STORAGE_PATH"]
    assert config.sweep.storage.endpoint_url == settings["AWS_ENDPOINT_URL"]
    assert config.sweep.mlflow.tracking_uri == settings["MLFLOW_TRACKING_URI"]
    assert config.sweep.mlflow.experiment == original.sweep.mlflow.experiment


def test_render_sets_the_image_and_writes_files(tmp_path):
    image = "registry.example.com/team/nbft:1.2.3"
    out = tmp_path / "out"
    gpu_sweep = REPO / "sweeps" / "paper" / "dtd.yaml"
    result = _render(
        str(gpu_sweep), "--overlay", "gpu-cluster", "--image", image, "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    manifests = out / f"{rayjob_name(load_config(gpu_sweep).name)}.yaml"
    docs = parse_documents(manifests.read_text())
    (rayjob,) = _by_kind(docs, "RayJob")
    cluster = rayjob["spec"]["rayClusterSpec"]
    images = {
        cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
        cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"],
        rayjob["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["image"],
    }
    assert images == {image}
    assert cluster["workerGroupSpecs"][0]["maxReplicas"] == 8
    text, _ = _embedded_sweep(docs, rayjob)
    assert yaml.safe_load(text) == yaml.safe_load((out / "sweep.yaml").read_text())


def test_render_keeps_an_s3_storage_and_http_tracking_server_of_the_file(tmp_path):
    raw = yaml.safe_load(QUICKSTART.read_text())
    raw["sweep"]["storage"] = {
        "path": "s3://team-bucket/sweeps",
        "endpoint_url": "https://s3.internal:9000",
    }
    raw["sweep"]["mlflow"]["tracking_uri"] = "https://mlflow.internal"
    raw["sweep"]["space"] = str((REPO / "search_spaces" / "paper_full.yaml").resolve())
    sweep = tmp_path / "mine.yaml"
    sweep.write_text(yaml.safe_dump(raw))
    result = _render(str(sweep))
    assert result.exit_code == 0, result.output
    docs = parse_documents(result.stdout)
    (rayjob,) = _by_kind(docs, "RayJob")
    text, _ = _embedded_sweep(docs, rayjob)
    embedded = yaml.safe_load(text)["sweep"]
    assert embedded["storage"]["path"] == "s3://team-bucket/sweeps"
    assert embedded["mlflow"]["tracking_uri"] == "https://mlflow.internal"


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        ("name: x\nmodel: {name: resnet18}\ndata: {kind: nope}\n", [], "data.kind"),
        ("name: [unclosed\n", [], "YAML"),
        (None, [], "sweep file"),
        ("SWEEP", ["--overlay", "production"], "--overlay"),
        ("SWEEP", ["--image", "Bad Image"], "--image"),
        ("SPACE", [], "sweep.space"),
        ("SWEEP", ["--out", "FILE"], "--out"),
    ],
)
def test_render_bad_input_exits_2_with_one_line(tmp_path, content, args, needle):
    sweep = tmp_path / "bad.yaml"
    if content == "SWEEP":
        sweep = QUICKSTART
    elif content == "SPACE":
        raw = yaml.safe_load(QUICKSTART.read_text())
        raw["sweep"]["space"] = "no_such_space.yaml"
        sweep.write_text(yaml.safe_dump(raw))
    elif content is not None:
        sweep.write_text(content)
    if "FILE" in args:  # --out naming an existing file
        (tmp_path / "a-file").write_text("x")
        args = [str(tmp_path / "a-file") if arg == "FILE" else arg for arg in args]
    result = _render(str(sweep), *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines


def test_rayjob_names_are_kubernetes_names():
    assert rayjob_name("Caltech256 / Inception v4") == "nbft-caltech256-inception-v4"
    long = rayjob_name("x" * 80)
    assert len(long) == 47 and long.startswith("nbft-")


def test_render_resume_continues_the_stored_sweep():
    result = _render(str(QUICKSTART), "--resume")
    assert result.exit_code == 0, result.output
    (rayjob,) = _by_kind(parse_documents(result.stdout), "RayJob")
    assert rayjob["spec"]["entrypoint"] == "nbft sweep /config/sweep.yaml --resume"


@pytest.mark.parametrize(
    ("sweep", "overlay", "field"),
    [
        ("quickstart.yaml", "gpu-cluster", "'sweep.resources.gpus' must be > 0"),
        ("paper/dtd.yaml", "dev", "'sweep.resources.gpus' must be at most 0"),
    ],
)
def test_render_refuses_trials_the_overlays_workers_cannot_run(sweep, overlay, field):
    result = _render(str(REPO / "sweeps" / sweep), "--overlay", overlay)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert field in message and f"overlay '{overlay}'" in message


def test_every_paper_sweep_renders_for_the_gpu_cluster_and_the_quickstart_for_dev():
    for path in sorted((REPO / "sweeps" / "paper").glob("*.yaml")):
        result = _render(str(path), "--overlay", "gpu-cluster")
        assert result.exit_code == 0, (path.name, result.output)
    assert _render(str(QUICKSTART), "--overlay", "dev").exit_code == 0
