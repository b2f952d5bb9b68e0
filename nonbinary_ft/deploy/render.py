"""Render the Kubernetes manifests of one sweep: ``nbft k8s render``.

The manifests live in ``k8s/`` as kustomize bases and overlays (see README, "Run on
Kubernetes"). Rendering a sweep is done by kustomize itself, not re-implemented here:

1. the sweep file is validated with :func:`nonbinary_ft.config.load_config`;
2. ``k8s/`` is copied to a temporary folder and the overlay's sweep stack
   (``overlays/<overlay>/sweep``) is built once with ``kubectl kustomize``, to read the
   cluster's addresses from its ``nbft-cluster`` ConfigMap;
3. the sweep file is made self-contained for the cluster (search spaces named by path are
   inlined; trial storage and MLflow point at the cluster's S3 and tracking server unless the
   file already names an S3 path or an HTTP tracking server), validated again, and written
   over ``base/sweep/sweep.yaml``, the file of the ``nbft-sweep-file`` ConfigMap;
4. the overlay's kustomization gets the RayJob's name (``nbft-<sweep name>``) and, with
   ``image``, the image; a second ``kubectl kustomize`` produces the manifests.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nonbinary_ft.config import ExperimentConfig, load_config
from nonbinary_ft.config.space import dump_space, load_space
from nonbinary_ft.errors import ConfigError

__all__ = ["RenderError", "RenderedSweep", "default_k8s_dir", "list_overlays", "render_sweep"]

logger = logging.getLogger(__name__)

# KubeRay derives the RayCluster's and its Services' names from the RayJob's and refuses
# RayJob names longer than this.
MAX_RAYJOB_NAME = 47
SWEEP_FILE_IN_BASE = Path("base") / "sweep" / "sweep.yaml"
CLUSTER_CONFIGMAP = "nbft-cluster"
ENTRYPOINT = "nbft sweep /config/sweep.yaml"
KUBECTL_TIMEOUT_S = 120


class RenderError(Exception):
    """kubectl is missing or kustomize failed: a failure of the tooling, not of the input."""


@dataclass(frozen=True)
class RenderedSweep:
    """The result of :func:`render_sweep`.

    Attributes:
        manifests: every rendered resource, as one multi-document YAML string.
        sweep_yaml: the sweep file as the cluster sees it (in the ``nbft-sweep-file``
            ConfigMap, mounted at /config/sweep.yaml).
        rayjob_name: the RayJob's name.
        overlay: the overlay it was rendered with.
    """

    manifests: str
    sweep_yaml: str
    rayjob_name: str
    overlay: str

    def write(self, out_dir: Path) -> list[Path]:
        """Write ``<rayjob_name>.yaml`` (the manifests) and ``sweep.yaml`` into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        manifests = out_dir / f"{self.rayjob_name}.yaml"
        sweep = out_dir / "sweep.yaml"
        manifests.write_text(self.manifests)
        sweep.write_text(self.sweep_yaml)
        return [manifests, sweep]


def default_k8s_dir() -> Path:
    """The manifests shipped with the package (``k8s/`` of the repository, which
    ``nonbinary_ft/deploy/manifests`` links to in a checkout), else ``./k8s``."""
    shipped = Path(__file__).resolve().parent / "manifests"
    return shipped if shipped.is_dir() else Path("k8s")


def list_overlays(k8s_dir: Path) -> list[str]:
    """The overlays that have a sweep stack (``overlays/<name>/sweep/kustomization.yaml``)."""
    overlays = k8s_dir / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(path.parent.parent.name for path in overlays.glob("*/sweep/kustomization.yaml"))


def render_sweep(
    sweep_file: str | Path,
    overlay: str = "dev",
    image: str | None = None,
    k8s_dir: Path | None = None,
    resume: bool = False,
) -> RenderedSweep:
    """Render the manifests that run ``nbft sweep`` on ``sweep_file`` in a KubeRay cluster.

    Args:
        sweep_file: the sweep file (validated first).
        overlay: the overlay under ``k8s/overlays/`` whose ``sweep`` stack is rendered.
        image: the nbft image (``REGISTRY/nbft:TAG``), replacing the overlay's.
        k8s_dir: the kustomize tree; default :func:`default_k8s_dir`.
        resume: the job continues the sweep stored at ``sweep.storage`` (``--resume``).

    Raises:
        ConfigError: the sweep file is invalid, names a missing search space, or the overlay
            or image is malformed.
        RenderError: kubectl is missing or kustomize fails.
    """
    config = load_config(sweep_file)
    k8s_dir = k8s_dir or default_k8s_dir()
    overlays = list_overlays(k8s_dir)
    if overlay not in overlays:
        raise ConfigError(
            "--overlay",
            f"one of {overlays} (folders under {k8s_dir / 'overlays'} with a sweep stack)",
            overlay,
        )
    if image is not None:
        _check_image(image)
    _warn_about_paths(config)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RenderError(
            "kubectl not found on PATH: install it (it carries kustomize) to render manifests"
        )
    name = rayjob_name(config.name)
    with tempfile.TemporaryDirectory(prefix="nbft-k8s-") as tmp:
        tree = Path(tmp) / "k8s"
        shutil.copytree(
            k8s_dir, tree, ignore=shutil.ignore_patterns("schemas", "secrets", "images")
        )
        stack = tree / "overlays" / overlay / "sweep"
        base_manifests = _kustomize(kubectl, stack)
        _check_trials_fit(base_manifests, config, overlay)
        cluster = _cluster_settings(base_manifests)
        sweep_yaml = in_cluster_sweep(Path(sweep_file), config, cluster)
        (tree / SWEEP_FILE_IN_BASE).write_text(sweep_yaml)
        # What the cluster will read must be valid too (the rewritten file is checked again).
        load_config(tree / SWEEP_FILE_IN_BASE)
        _customise_overlay(stack / "kustomization.yaml", name, image, resume)
        manifests = _kustomize(kubectl, stack)
    return RenderedSweep(manifests, sweep_yaml, name, overlay)


def rayjob_name(sweep_name: str) -> str:
    """``nbft-<sweep name>`` as a Kubernetes name: lower case, [a-z0-9-], at most 47 long."""
    slug = re.sub(r"[^a-z0-9-]+", "-", sweep_name.lower()).strip("-") or "sweep"
    return f"nbft-{slug}"[:MAX_RAYJOB_NAME].rstrip("-")


def in_cluster_sweep(sweep_file: Path, config: ExperimentConfig, cluster: dict[str, str]) -> str:
    """The sweep file as the cluster runs it, as YAML.

    Search spaces named by path are inlined (the ConfigMap is the only file the job sees).
    ``sweep.storage`` becomes the cluster's S3 path and endpoint unless the file already names
    an ``s3://`` path; ``sweep.mlflow.tracking_uri`` becomes the cluster's tracking server
    unless the file already names an HTTP(S) one.

    Raises:
        ConfigError: a search space file that does not exist or is invalid.
    """
    raw = yaml.safe_load(sweep_file.read_text())
    sweep = raw.setdefault("sweep", {}) or {}
    raw["sweep"] = sweep
    if sweep.get("space") is None:
        logger.warning(
            "%s has no sweep.space: nbft sweep will refuse to start in the cluster; add one "
            "(e.g. space: ../search_spaces/paper_full.yaml)",
            sweep_file,
        )
    else:
        sweep["space"] = _inline_spaces(sweep["space"], sweep_file)
    storage = config.sweep.storage
    if not storage.path.startswith("s3://"):
        sweep["storage"] = {
            "path": cluster["NBFT_STORAGE_PATH"],
            "endpoint_url": cluster["AWS_ENDPOINT_URL"],
            "region": cluster.get("AWS_REGION", storage.region),
        }
    tracking_uri = config.sweep.mlflow.tracking_uri or ""
    if not tracking_uri.startswith(("http://", "https://")):
        sweep.setdefault("mlflow", {})["tracking_uri"] = cluster["MLFLOW_TRACKING_URI"]
    header = (
        f"# Rendered by `nbft k8s render` from {sweep_file.name}: search spaces inlined, "
        "storage and MLflow\n# pointed at the cluster's. Mounted at /config/sweep.yaml.\n"
    )
    return header + yaml.safe_dump(raw, sort_keys=False)


def _inline_spaces(space: Any, sweep_file: Path) -> Any:
    if isinstance(space, list):
        return [_inline_spaces(item, sweep_file) for item in space]
    if not isinstance(space, str):
        return space
    path = Path(space).expanduser()
    candidates = [path] if path.is_absolute() else [sweep_file.resolve().parent / path, path]
    for candidate in candidates:
        if candidate.is_file():
            return yaml.safe_load(dump_space(load_space(candidate)))
    raise ConfigError(
        "sweep.space",
        "an existing search-space file (looked up next to the sweep file, then in the "
        "working directory)",
        space,
        source=sweep_file,
    )


def _check_image(image: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:@-]*", image) or image.endswith((":", "@")):
        raise ConfigError(
            "--image", "an image reference such as registry.example.com/nbft:0.1.0", image
        )


def _split_image(image: str) -> dict[str, str]:
    """kustomize's ``images`` entry for ``nbft`` from ``NAME[:TAG][@DIGEST]``."""
    entry = {"name": "nbft"}
    name, _, digest = image.partition("@")
    if digest:
        entry["digest"] = digest
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, entry["newTag"] = name[:colon], name[colon + 1 :]
    entry["newName"] = name
    return entry


def _warn_about_paths(config: ExperimentConfig) -> None:
    root = config.data.root
    if root is not None and not str(root).startswith(("/data", "s3://")):
        logger.warning(
            "data.root is %s, but in the cluster data sets are under /data (the nbft-datasets "
            "volume, read-only) or in S3: use /data/<folder> or s3://bucket/prefix",
            root,
        )


def _kustomize(kubectl: str, folder: Path) -> str:
    try:
        done = subprocess.run(
            [kubectl, "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=KUBECTL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise RenderError(f"kubectl kustomize {folder} took over {error.timeout}s") from None
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())
        raise RenderError(f"kubectl kustomize failed: {detail}")
    return done.stdout


def _worker_limits(manifests: str) -> dict[str, Any]:
    for document in yaml.safe_load_all(manifests):
        if document and document.get("kind") == "RayJob":
            (group, *_) = document["spec"]["rayClusterSpec"]["workerGroupSpecs"]
            return group["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    raise RenderError("the overlay renders no RayJob")


def _check_trials_fit(manifests: str, config: ExperimentConfig, overlay: str) -> None:
    """A trial's request fits one worker of the overlay, and GPU workers get GPU trials.

    A trial that asks for more than a worker has waits forever (Pending until the RayJob's
    deadline); GPUs no trial asks for are paid for and idle.

    Raises:
        ConfigError: naming ``sweep.resources.gpus`` or ``.cpus`` and the overlay.
    """
    limits = _worker_limits(manifests)
    worker_gpus = int(limits.get("nvidia.com/gpu", 0))
    trial = config.sweep.resources
    where = f"the overlay '{overlay}'"
    if worker_gpus and trial.gpus <= 0:
        raise ConfigError(
            "sweep.resources.gpus", f"> 0 for {where}, whose workers have {worker_gpus} GPU",
            trial.gpus, "Set gpus: 1 (and train.device: cuda), or render with --overlay dev "
            "(CPU workers).",
        )  # fmt: skip
    if trial.gpus > worker_gpus:
        raise ConfigError(
            "sweep.resources.gpus", f"at most {worker_gpus} for {where} (GPUs per worker)",
            trial.gpus, "A trial asking for more would wait forever; render with "
            "--overlay gpu-cluster for GPU workers.",
        )  # fmt: skip
    worker_cpus = _cpus(limits.get("cpu", "0"))
    if worker_cpus and trial.cpus > worker_cpus:
        raise ConfigError(
            "sweep.resources.cpus", f"at most {worker_cpus:g} for {where} (CPUs per worker)",
            trial.cpus, "A trial asking for more would wait forever.",
        )  # fmt: skip


def _cpus(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity ('2', '500m') in CPUs."""
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _cluster_settings(manifests: str) -> dict[str, str]:
    for document in yaml.safe_load_all(manifests):
        if not document or document.get("kind") != "ConfigMap":
            continue
        if document["metadata"]["name"].startswith(CLUSTER_CONFIGMAP):
            settings = document.get("data") or {}
            missing = {"NBFT_STORAGE_PATH", "AWS_ENDPOINT_URL", "MLFLOW_TRACKING_URI"} - set(
                settings
            )
            if missing:
                raise RenderError(f"the {CLUSTER_CONFIGMAP} ConfigMap lacks {sorted(missing)}")
            return settings
    raise RenderError(f"the overlay renders no {CLUSTER_CONFIGMAP} ConfigMap")


def _customise_overlay(kustomization: Path, name: str, image: str | None, resume: bool) -> None:
    """Name the RayJob after the sweep, set the image and --resume, in the kustomization."""
    doc = yaml.safe_load(kustomization.read_text())
    rename = [
        {"op": "replace", "path": "/metadata/name", "value": name},
        {"op": "add", "path": "/metadata/labels/nbft.io~1sweep", "value": name},
    ]
    if resume:
        rename.append(
            {"op": "replace", "path": "/spec/entrypoint", "value": f"{ENTRYPOINT} --resume"}
        )
    # Appended last: the overlay's own patches still find the RayJob by its base name.
    doc.setdefault("patches", []).append(
        {"target": {"kind": "RayJob", "name": "nbft-sweep"}, "patch": yaml.safe_dump(rename)}
    )
    if image is not None:
        images = [entry for entry in doc.get("images", []) if entry.get("name") != "nbft"]
        doc["images"] = [*images, _split_image(image)]
    kustomization.write_text(yaml.safe_dump(doc, sort_keys=False))
