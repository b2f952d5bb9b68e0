"""k8s/: every overlay builds, validates against its schemas and wires the sweep up right."""

from __future__ import annotations

import configparser
import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_helpers import (
    K8S,
    pod_specs,
    resource_id,
    validate,
    validate_core,
    validate_rayjob,
)

from nonbinary_ft.config import load_config

EXPECTED_STACKS = {"dev/platform", "dev/sweep", "gpu-cluster/platform", "gpu-cluster/sweep"}


def _only(docs: list[dict[str, Any]], kind: str, name: str = "") -> dict[str, Any]:
    """The one resource of this kind and name; a name ending in '-' is a generated prefix."""

    def matches(doc: dict[str, Any]) -> bool:
        actual = doc["metadata"]["name"]
        return actual.startswith(name) if name.endswith("-") or not name else actual == name

    found = [doc for doc in docs if doc["kind"] == kind and matches(doc)]
    assert len(found) == 1, f"expected one {kind} {name!r}, got {[resource_id(d) for d in found]}"
    return found[0]


def _rayjob(rendered, stack: str) -> dict[str, Any]:
    return _only(rendered[stack], "RayJob")


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


def test_every_overlay_builds(rendered):
    assert set(rendered) >= EXPECTED_STACKS
    for stack, docs in rendered.items():
        assert docs, stack
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "nbft", (stack, resource_id(doc))


def test_every_resource_validates_against_its_schema(rendered):
    kinds = set()
    for stack, docs in rendered.items():
        for doc in docs:
            try:
                validate(doc)
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
                pytest.fail(f"{stack} {resource_id(doc)}: {error.message}")
            kinds.add(doc["kind"])
    assert {"RayJob", "Deployment", "StatefulSet", "Service", "NetworkPolicy"} <= kinds


def test_validators_reject_what_kubernetes_would(rendered):
    """The validation above is not vacuous: typos, wrong types and missing fields fail."""
    rayjob = _rayjob(rendered, "dev/sweep")
    broken = []
    typo = copy.deepcopy(rayjob)
    typo["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    broken.append(typo)
    wrong_type = copy.deepcopy(rayjob)
    wrong_type["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = "yes"
    broken.append(wrong_type)
    missing = copy.deepcopy(rayjob)
    del missing["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    broken.append(missing)
    bad_enum = copy.deepcopy(rayjob)
    bad_enum["spec"]["rayClusterSpec"]["autoscalerOptions"]["upscalingMode"] = "Fast"
    broken.append(bad_enum)
    bad_pod = copy.deepcopy(rayjob)  # checked against core PodTemplateSpec
    bad_pod["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "volumeMount"
    ] = []
    broken.append(bad_pod)
    bad_submitter = copy.deepcopy(rayjob)
    bad_submitter["spec"]["submitterPodTemplate"]["spec"]["restartPolicy"] = 3
    broken.append(bad_submitter)
    for doc in broken:
        with pytest.raises(jsonschema.ValidationError):
            validate_rayjob(doc)
    deployment = copy.deepcopy(_only(rendered["dev/platform"], "Deployment", "mlflow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(deployment)


@pytest.mark.parametrize("stack", ["dev/sweep", "gpu-cluster/sweep"])
def test_rayjob_runs_nbft_sweep_on_an_autoscaled_cluster(rendered, stack):
    docs = rendered[stack]
    rayjob = _rayjob(rendered, stack)
    spec = rayjob["spec"]
    assert spec["entrypoint"] == "nbft sweep /config/sweep.yaml"
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    import ray

    assert cluster["rayVersion"] == ray.__version__
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert group["maxReplicas"] >= 1
    worker = group["template"]["spec"]
    (container,) = worker["containers"]
    limits = container["resources"]["limits"]
    if stack == "dev/sweep":  # kind or minikube as written: no GPU asked for or tolerated
        assert "nvidia.com/gpu" not in str(rayjob) and group["groupName"] == "cpu"
    else:
        assert limits["nvidia.com/gpu"] == "1" and int(limits["cpu"]) >= 12
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in worker[
            "tolerations"
        ]

    # The sweep file: a ConfigMap generated from a file, mounted at /config on the head.
    sweep_map = _only(docs, "ConfigMap", "nbft-sweep-file-")
    head_pod = head["template"]["spec"]
    volumes = {v["name"]: v for v in head_pod["volumes"]}
    mounts = {m["mountPath"]: m for m in head_pod["containers"][0]["volumeMounts"]}
    config_volume = volumes[mounts["/config"]["name"]]
    assert config_volume["configMap"]["name"] == sweep_map["metadata"]["name"]
    assert mounts["/config"]["readOnly"] is True
    sweep = yaml.safe_load(sweep_map["data"]["sweep.yaml"])
    assert sweep["name"]

    # Data sets from a PVC, read-only at /data, on the head and on every worker.
    for pod_id, pod in pod_specs(rayjob):
        if pod_id.endswith("/submitter"):
            continue
        pod_volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = pod["containers"][0]["volumeMounts"]
        (data_mount,) = [m for m in mounts if m["mountPath"] == "/data"]
        assert data_mount["readOnly"] is True, pod_id
        claim = pod_volumes[data_mount["name"]]["persistentVolumeClaim"]
        assert claim == {"claimName": "nbft-datasets", "readOnly": True}, pod_id

    # MLflow and S3: addresses from the cluster ConfigMap, credentials from Secrets.
    cluster_map = _only(docs, "ConfigMap", "nbft-cluster-")
    settings = cluster_map["data"]
    assert settings["MLFLOW_TRACKING_URI"].startswith("http://mlflow.nbft.svc")
    assert settings["AWS_ENDPOINT_URL"].startswith(("http://", "https://"))
    assert settings["NBFT_STORAGE_PATH"].startswith("s3://")
    for pod_id, pod in pod_specs(rayjob):
        if pod_id.endswith("/submitter"):
            continue
        ray_container = pod["containers"][0]
        assert ray_container["envFrom"] == [
            {"configMapRef": {"name": cluster_map["metadata"]["name"]}}
        ], pod_id
        env = _env(ray_container)
        for name, secret in (
            ("MLFLOW_TRACKING_USERNAME", "nbft-mlflow-client"),
            ("MLFLOW_TRACKING_PASSWORD", "nbft-mlflow-client"),
            ("AWS_ACCESS_KEY_ID", "nbft-s3"),
            ("AWS_SECRET_ACCESS_KEY", "nbft-s3"),
        ):
            if pod_id.endswith("/head") or not name.startswith("MLFLOW"):
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret, (pod_id, name)
            else:  # only the driver, on the head, logs to MLflow
                assert name not in env, (pod_id, name)


def test_default_sweep_file_validates_and_points_at_the_cluster():
    config = load_config(K8S / "base" / "sweep" / "sweep.yaml")
    assert config.sweep.storage.path.startswith("s3://")
    assert config.sweep.storage.endpoint_url
    assert config.sweep.mlflow.tracking_uri.startswith("http://mlflow.nbft.svc")


def test_dev_overlay_is_small_and_gpu_cluster_scales_out(rendered):
    dev = _rayjob(rendered, "dev/sweep")["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    prod = _rayjob(rendered, "gpu-cluster/sweep")["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert dev["maxReplicas"] == 1 < prod["maxReplicas"]
    assert "nodeSelector" in prod["template"]["spec"]
    dev_names = {resource_id(d) for d in rendered["dev/platform"]}
    prod_names = {resource_id(d) for d in rendered["gpu-cluster/platform"]}
    assert "StatefulSet/minio" in dev_names and "StatefulSet/minio" not in prod_names


@pytest.mark.parametrize("stack", ["dev/platform", "gpu-cluster/platform"])
def test_mlflow_server_is_authenticated_and_serves_s3_artifacts(rendered, stack):
    docs = rendered[stack]
    deployment = _only(docs, "Deployment", "mlflow")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[0] == "server" and "--app-name=basic-auth" in args and "--serve-artifacts" in args
    assert "--artifacts-destination=$(MLFLOW_ARTIFACTS_DESTINATION)" in args
    assert "--backend-store-uri=postgresql://mlflow-postgres:5432/mlflow" in args
    settings = _only(docs, "ConfigMap", "mlflow-settings-")["data"]
    assert settings["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert settings["MLFLOW_S3_ENDPOINT_URL"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": _only(docs, "ConfigMap", "mlflow-settings-")["metadata"]["name"]}}
    ]
    env = _env(container)
    for name in (
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "PGUSER",
        "PGPASSWORD",
    ):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    auth = configparser.ConfigParser()
    auth.read_string(_only(docs, "ConfigMap", "mlflow-auth-config-")["data"]["basic_auth.ini"])
    # No credential in the ConfigMap: the admin comes from env, libpq reads PGPASSWORD.
    assert auth["mlflow"]["database_uri"] == "postgresql://mlflow-postgres:5432/mlflow_auth"
    assert not [key for key in auth["mlflow"] if "password" in key or "username" in key]
    service = _only(docs, "Service", "mlflow")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    postgres = _only(docs, "StatefulSet", "mlflow-postgres")
    (claim,) = postgres["spec"]["volumeClaimTemplates"]
    mounts = {
        m["name"]: m["mountPath"]
        for m in postgres["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts[claim["metadata"]["name"]] == "/var/lib/postgresql/data"
    assert _only(docs, "Service", "mlflow-postgres")["spec"]["ports"][0]["port"] == 5432


@pytest.mark.parametrize("stack", ["dev/platform", "gpu-cluster/platform"])
def test_network_policies_guard_mlflow_and_postgres(rendered, stack):
    docs = rendered[stack]
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    mlflow = policies["mlflow"]
    assert mlflow["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mlflow"}
    assert "Ingress" in mlflow["policyTypes"]
    (rule,) = mlflow["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"nbft.io/mlflow-client": "true"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5000}]
    postgres = policies["mlflow-postgres"]
    assert set(postgres["policyTypes"]) == {"Ingress", "Egress"} and postgres["egress"] == []
    (rule,) = postgres["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}]

    # The clients the policy lets in are exactly the RayJob's head and workers.
    rayjob = _rayjob(rendered, stack.replace("platform", "sweep"))["spec"]
    templates = {
        "head": rayjob["rayClusterSpec"]["headGroupSpec"]["template"],
        "gpu": rayjob["rayClusterSpec"]["workerGroupSpecs"][0]["template"],
        "submitter": rayjob["submitterPodTemplate"],
    }
    clients = [
        role
        for role, template in templates.items()
        if template["metadata"]["labels"].get("nbft.io/mlflow-client") == "true"
    ]
    assert clients == ["head"]


@pytest.mark.parametrize("stack", ["dev/sweep", "gpu-cluster/sweep"])
def test_the_ray_cluster_is_closed_to_all_but_its_own_pods_and_kuberay(rendered, stack):
    docs = rendered[stack]
    policy = _only(docs, "NetworkPolicy", "nbft-ray")["spec"]
    own = {"app.kubernetes.io/name": "nbft-sweep"}
    assert policy["podSelector"]["matchLabels"] == own and policy["policyTypes"] == ["Ingress"]
    peers, operator = policy["ingress"]
    assert peers == {"from": [{"podSelector": {"matchLabels": own}}]}
    (source,) = operator["from"]
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kuberay-operator"}
    assert operator["ports"] == [{"protocol": "TCP", "port": 8265}]  # the dashboard only
    # The policy selects exactly the RayJob's pods: head, workers and the submitter.
    rayjob = _rayjob(rendered, stack)["spec"]
    templates = [
        rayjob["rayClusterSpec"]["headGroupSpec"]["template"],
        *[group["template"] for group in rayjob["rayClusterSpec"]["workerGroupSpecs"]],
        rayjob["submitterPodTemplate"],
    ]
    for template in templates:
        labels = template["metadata"]["labels"]
        assert own.items() <= labels.items(), labels


@pytest.mark.parametrize("stack", ["dev/platform", "gpu-cluster/platform"])
def test_mlflow_reaches_postgres_as_its_own_role_not_the_superuser(rendered, stack):
    docs = rendered[stack]
    mlflow = _env(_only(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0])
    for name in ("PGUSER", "PGPASSWORD"):
        assert mlflow[name]["valueFrom"]["secretKeyRef"]["name"] == "nbft-mlflow-db"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert mlflow[name]["valueFrom"]["secretKeyRef"]["name"] == "nbft-mlflow-s3"
    postgres = _only(docs, "StatefulSet", "mlflow-postgres")["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"] for v in postgres["volumes"] if "secret" in v}
    assert secrets == {"nbft-postgres", "nbft-mlflow-db"}
    (script,) = _only(docs, "ConfigMap", "mlflow-postgres-initdb-")["data"].values()
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE" in script
    assert "ALTER DATABASE mlflow OWNER TO" in script
    assert "CREATE DATABASE mlflow_auth OWNER" in script
    assert "/etc/mlflow-db-credentials/password" in script  # from the Secret, not the file


def test_the_data_volume_has_a_storage_class_per_overlay(rendered):
    classes = {
        stack: _only(rendered[stack], "PersistentVolumeClaim", "nbft-datasets")["spec"]
        for stack in ("dev/platform", "gpu-cluster/platform")
    }
    assert classes["dev/platform"]["storageClassName"] == "standard"
    assert classes["dev/platform"]["accessModes"] == ["ReadWriteOnce"]
    assert classes["gpu-cluster/platform"]["storageClassName"]
    assert classes["gpu-cluster/platform"]["accessModes"] == ["ReadWriteMany"]
