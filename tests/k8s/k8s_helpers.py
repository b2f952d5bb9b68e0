"""Offline checks of the k8s/ manifests: kustomize builds, schema validation, pod specs.

Core kinds are validated against the Kubernetes JSON schemas of ``K8S_VERSION`` shipped in the
``kubernetes-validate`` package (strict: unknown fields are errors). A RayJob is validated
against KubeRay's CRD in ``k8s/schemas/kuberay/`` with ``jsonschema``, unknown fields being
errors there too, and the core types KubeRay embeds (pod templates, the head Service, ...)
against their own core schemas.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
K8S_VERSION = "1.32"
RAYJOB_CRD = K8S / "schemas" / "kuberay" / "ray.io_rayjobs.yaml"
WAIVERS = K8S / "checkov-waivers.yaml"
PLACEHOLDER = "REPLACE_ME"

# Where KubeRay embeds a core Kubernetes type in a RayJob, and which one ("*" = every item).
RAYJOB_CORE_TYPES = {
    ("spec", "submitterPodTemplate"): "podtemplatespec-v1",
    ("spec", "rayClusterSpec", "headGroupSpec", "template"): "podtemplatespec-v1",
    ("spec", "rayClusterSpec", "headGroupSpec", "headService"): "service-v1",
    ("spec", "rayClusterSpec", "workerGroupSpecs", "*", "template"): "podtemplatespec-v1",
    ("spec", "rayClusterSpec", "autoscalerOptions", "resources"): "resourcerequirements-v1",
    ("spec", "rayClusterSpec", "autoscalerOptions", "securityContext"): "securitycontext-v1",
    ("spec", "rayClusterSpec", "autoscalerOptions", "env", "*"): "envvar-v1",
    ("spec", "rayClusterSpec", "autoscalerOptions", "envFrom", "*"): "envfromsource-v1",
    ("spec", "rayClusterSpec", "autoscalerOptions", "volumeMounts", "*"): "volumemount-v1",
}


def kubectl() -> str:
    """Path of kubectl (which carries kustomize)."""
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError("kubectl is needed for the k8s tests (it carries kustomize)")
    return path


def overlay_stacks() -> list[str]:
    """Every kustomization under k8s/overlays, as 'overlay/stack' (e.g. 'dev/sweep')."""
    return sorted(
        str(path.parent.relative_to(K8S / "overlays"))
        for path in (K8S / "overlays").glob("*/*/kustomization.yaml")
    )


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize folder``, parsed; fails the caller on a kustomize error."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{done.stderr}")
    return parse_documents(done.stdout)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML string."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def resource_id(doc: dict[str, Any]) -> str:
    """'Kind/name', e.g. 'Deployment/mlflow'."""
    return f"{doc['kind']}/{doc['metadata']['name']}"


# --- schemas -------------------------------------------------------------------------------


def _schema_dir() -> str:
    return f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict"


@cache
def _core_registry() -> Registry:
    definitions = kubernetes_validate.utils.schema_contents(
        f"{_schema_dir()}/_definitions.json", K8S_VERSION
    )
    return Resource.from_contents(definitions) @ Registry()


def validate_core_type(instance: Any, type_file: str) -> None:
    """Validate against one core type's strict schema, e.g. 'podtemplatespec-v1'.

    Raises:
        jsonschema.ValidationError: the instance does not match.
    """
    schema = kubernetes_validate.utils.schema_contents(
        f"{_schema_dir()}/{type_file}.json", K8S_VERSION
    )
    validator = jsonschema.Draft202012Validator(schema, registry=_core_registry())
    validator.validate(instance)


def validate_core(doc: dict[str, Any]) -> None:
    """Validate a core-kind resource (Deployment, Service, ...) strictly.

    Raises:
        kubernetes_validate.ValidationError: it does not match its schema.
        kubernetes_validate.SchemaNotFoundError: not a core kind of this Kubernetes version.
    """
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@cache
def rayjob_schema() -> dict[str, Any]:
    """The RayJob v1 openAPIV3Schema of the committed CRD, as a strict JSON schema."""
    crd = yaml.safe_load(RAYJOB_CRD.read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "ray.io"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(node: Any) -> Any:
    """An OpenAPI v3 CRD schema as a JSON schema that rejects unknown fields.

    The API server prunes unknown fields of a structural schema and kubectl's default strict
    field validation reports them; here they are errors, except below
    ``x-kubernetes-preserve-unknown-fields`` (the embedded core types, checked separately).
    """
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items() if not key.startswith("x-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        node.get("type") == "object"
        and "properties" in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        out["additionalProperties"] = False
    return out


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    if not path:
        yield "", value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for index, item in enumerate(value if isinstance(value, list) else []):
            for where, found in _walk(item, rest):
                yield f"[{index}]{where}", found
    elif isinstance(value, dict) and head in value:
        for where, found in _walk(value[head], rest):
            yield f".{head}{where}", found


def validate_rayjob(doc: dict[str, Any]) -> None:
    """Validate a RayJob against KubeRay's CRD and its embedded core types against theirs.

    Raises:
        jsonschema.ValidationError: with the path of the first problem.
    """
    jsonschema.Draft202012Validator(rayjob_schema()).validate(doc)
    for path, type_file in RAYJOB_CORE_TYPES.items():
        for where, value in _walk(doc, path):
            try:
                validate_core_type(value, type_file)
            except jsonschema.ValidationError as error:
                location = "".join(f".{p}" for p in error.absolute_path)
                raise jsonschema.ValidationError(
                    f"{where}{location}: {error.message} (as core {type_file})"
                ) from None


def validate(doc: dict[str, Any]) -> None:
    """Validate any rendered resource: RayJobs against the CRD, the rest as core kinds."""
    if doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob":
        validate_rayjob(doc)
    else:
        validate_core(doc)


# --- pods ----------------------------------------------------------------------------------


def pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec a resource creates, named 'Kind/name[/role]'."""
    rid = resource_id(doc)
    spec = doc.get("spec", {})
    if doc["kind"] == "RayJob":
        cluster = spec["rayClusterSpec"]
        yield f"{rid}/head", cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster.get("workerGroupSpecs", []):
            yield f"{rid}/{group['groupName']}", group["template"]["spec"]
        if "submitterPodTemplate" in spec:
            yield f"{rid}/submitter", spec["submitterPodTemplate"]["spec"]
    elif doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield rid, spec["template"]["spec"]
    elif doc["kind"] == "CronJob":
        yield rid, spec["jobTemplate"]["spec"]["template"]["spec"]
    elif doc["kind"] == "Pod":
        yield rid, spec


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod's init containers and containers."""
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def pod_security_findings(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The project's own pod-security checks, as (check, 'Kind/name[/role]/container').

    They cover what checkov cannot see (a RayJob's pods, a custom resource to checkov) and
    also run on the core kinds: non-root, RuntimeDefault seccomp, no privilege escalation,
    every capability dropped, a read-only root filesystem, CPU and memory requests and limits.
    """
    for pod_id, pod in pod_specs(doc):
        pod_context = pod.get("securityContext", {})
        for container in containers(pod):
            where = f"{pod_id}/{container['name']}"
            context = container.get("securityContext", {})
            non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            uid = context.get("runAsUser", pod_context.get("runAsUser"))
            if non_root is not True or uid == 0:
                yield "NBFT_NON_ROOT", where
            seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                yield "NBFT_SECCOMP", where
            if context.get("allowPrivilegeEscalation") is not False:
                yield "NBFT_NO_PRIVILEGE_ESCALATION", where
            if context.get("privileged"):
                yield "NBFT_NOT_PRIVILEGED", where
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                yield "NBFT_DROP_ALL_CAPABILITIES", where
            if context.get("capabilities", {}).get("add"):
                yield "NBFT_NO_ADDED_CAPABILITIES", where
            if context.get("readOnlyRootFilesystem") is not True:
                yield "NBFT_READ_ONLY_ROOT", where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for quantity in ("cpu", "memory"):
                    if quantity not in resources.get(kind, {}):
                        yield f"NBFT_{kind.upper()}_{quantity.upper()}", where
        if doc["kind"] == "RayJob" and pod_id.endswith("/head"):
            # KubeRay injects the autoscaler beside the head with autoscalerOptions' settings.
            options = doc["spec"]["rayClusterSpec"].get("autoscalerOptions", {})
            fake = {"name": "autoscaler", **options}
            fake_pod = {"securityContext": pod_context, "containers": [fake]}
            for check, where in pod_security_findings(
                {"kind": "Pod", "metadata": doc["metadata"], "spec": fake_pod}
            ):
                yield check, f"{pod_id}/{where.rsplit('/', 1)[-1]}"


def load_waivers() -> dict[str, list[dict[str, Any]]]:
    """k8s/checkov-waivers.yaml: {'checkov': [...], 'nbft': [...]}, each waiver with a reason."""
    return yaml.safe_load(WAIVERS.read_text())


def waived(waivers: list[dict[str, Any]], check: str, resource: str) -> dict[str, Any] | None:
    """The waiver that covers ``check`` on ``resource`` (fnmatch patterns), if any."""
    for waiver in waivers:
        if waiver["check"] == check and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in waiver["resources"]
        ):
            return waiver
    return None


def checkov_failures(report: str) -> list[tuple[str, str]]:
    """(check id, 'Kind/name') of every failed check in checkov's JSON report."""
    parsed = json.loads(report)
    failures = []
    for block in parsed if isinstance(parsed, list) else [parsed]:
        for failed in block.get("results", {}).get("failed_checks", []):
            # "Kind.namespace.name" (names may hold dots; pods add their labels after them).
            kind, _, name = failed["resource"].split(".", 2)
            failures.append((failed["check_id"], f"{kind}/{name}"))
    return failures
