"""The images: Ray's GPU image of the pinned Ray version, non-root, versions in step."""

from __future__ import annotations

import re

import mlflow
import ray
import tomllib
import yaml
from k8s_helpers import K8S, REPO


def _dockerfile_args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))


def test_nbft_image_is_rays_image_of_the_pinned_version_and_cuda_flavour_run_as_ray():
    text = (REPO / "Dockerfile").read_text()
    args = _dockerfile_args(text)
    assert args["RAY_VERSION"] == ray.__version__
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f"ray[tune]=={ray.__version__}" in pyproject["project"]["dependencies"]
    (base,) = re.findall(r"^FROM (\S+)", text, flags=re.M)
    # One build argument picks Ray's CUDA image and torch's CUDA build together.
    assert base == "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${CUDA}"
    assert args["PYTHON_TAG"] == "py311" and args["CUDA"] == "cu128"
    assert '"https://download.pytorch.org/whl/${CUDA}"' in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] == "ray"


def test_a_code_change_reuses_the_dependency_layer_pinned_by_the_shared_lock():
    text = (REPO / "Dockerfile").read_text()
    copies = re.findall(r"^COPY --chown=\S+ (.+) \S+$", text, flags=re.M)
    installs = [m.start() for m in re.finditer(r"^RUN pip install", text, flags=re.M)]
    dependencies, code = installs
    # Only pyproject.toml and the lock are in the context before the dependencies install.
    before = [c for c in copies if text.index(c) < dependencies]
    assert before == ["pyproject.toml constraints.txt"]
    assert "-c constraints.txt" in text[dependencies:code]
    assert text.index("nonbinary_ft ./nonbinary_ft") > dependencies
    assert "--no-deps ." in text[code:]
    # The same lock is what `make` installs (and so CI, which runs make test).
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["ray"] == ray.__version__ and pins["mlflow"] == mlflow.__version__
    import torch

    assert pins["torch"] == torch.__version__.split("+")[0]
    rayjob = yaml.safe_load((K8S / "base" / "sweep" / "rayjob.yaml").read_text())
    assert rayjob["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__


def test_dockerignore_sends_only_what_the_image_needs():
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "**"
    included = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    assert included == {
        "pyproject.toml", "constraints.txt", "README.md", "nonbinary_ft", "sweeps", "search_spaces",
    }  # fmt: skip


def test_mlflow_image_matches_the_tested_mlflow_and_runs_non_root():
    text = (K8S / "images" / "mlflow" / "Dockerfile").read_text()
    assert _dockerfile_args(text)["MLFLOW_VERSION"] == mlflow.__version__
    assert '"mlflow[auth]==${MLFLOW_VERSION}"' in text and "psycopg2" in text and "boto3" in text
    (user,) = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert not user.startswith(("0", "root"))
    for overlay in ("dev", "gpu-cluster"):
        kustomization = yaml.safe_load(
            (K8S / "overlays" / overlay / "platform" / "kustomization.yaml").read_text()
        )
        (entry,) = [i for i in kustomization["images"] if i["name"] == "nbft-mlflow"]
        assert entry["newTag"] == mlflow.__version__, overlay
