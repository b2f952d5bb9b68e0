"""Credentials come only from Secrets the user creates; the committed templates hold none."""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml
from k8s_helpers import K8S, PLACEHOLDER, pod_specs

SECRETS = K8S / "secrets"


def _templates() -> dict[str, dict[str, Any]]:
    templates = {}
    for path in sorted(SECRETS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] == "Secret", path
            templates[doc["metadata"]["name"]] = doc
    return templates


def _values(secret: dict[str, Any]) -> dict[str, str]:
    values = dict(secret.get("stringData") or {})
    for key, encoded in (secret.get("data") or {}).items():
        values[key] = base64.b64decode(encoded).decode()
    return values


def test_secret_templates_hold_only_placeholders():
    templates = _templates()
    assert set(templates) == {
        "nbft-postgres",
        "nbft-mlflow-server",
        "nbft-mlflow-client",
        "nbft-mlflow-db",
        "nbft-mlflow-s3",
        "nbft-s3",
    }
    for name, secret in templates.items():
        values = _values(secret)
        assert values, name
        for key, value in values.items():
            assert value == PLACEHOLDER, f"{name}.{key} must be {PLACEHOLDER}, not a value"


CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)


def test_no_credential_is_given_as_a_literal(rendered):
    """Credential-like env vars and ConfigMap keys never carry a literal value."""
    for stack, docs in rendered.items():
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                for key, value in (doc.get("data") or {}).items():
                    assert not CREDENTIAL_NAME.search(key), f"{stack} ConfigMap key {key}"
                    for line in value.splitlines():
                        if line.lstrip().startswith(("#", ";", "--")):
                            continue
                        option = line.split("=", 1)[0].strip().lower()
                        # A password is read from a mounted Secret or a psql variable
                        # holding one, never written out.
                        read = "$(cat /etc/" in line or ":'" in line
                        assert "password" not in option or read, f"{stack} {key}: {line}"
            for pod_id, pod in pod_specs(doc):
                for container in pod.get("containers", []) + pod.get("initContainers", []):
                    for env in container.get("env", []):
                        if CREDENTIAL_NAME.search(env["name"]) and not env["name"].endswith(
                            "_FILE"
                        ):
                            assert "value" not in env, f"{stack} {pod_id}: {env['name']}"
                            assert "secretKeyRef" in env["valueFrom"], f"{pod_id} {env['name']}"


def test_overlays_render_no_secret_and_every_reference_is_templated(rendered):
    templates = {name: set(_values(s)) for name, s in _templates().items()}
    references = set()
    for stack, docs in rendered.items():
        for doc in docs:
            assert doc["kind"] != "Secret", f"{stack} renders Secret {doc['metadata']['name']}"
            for _, pod in pod_specs(doc):
                for container in pod.get("containers", []) + pod.get("initContainers", []):
                    for env in container.get("env", []):
                        ref = env.get("valueFrom", {}).get("secretKeyRef")
                        if ref:
                            references.add((ref["name"], ref["key"]))
                    for source in container.get("envFrom", []):
                        assert "secretRef" not in source, "name the keys: secretKeyRef"
                for volume in pod.get("volumes", []):
                    if "secret" in volume:
                        name = volume["secret"]["secretName"]
                        for item in volume["secret"].get("items", []):
                            references.add((name, item["key"]))
                        if not volume["secret"].get("items"):
                            references.update((name, key) for key in templates.get(name, {}))
                            assert name in templates, name
    for name, key in sorted(references):
        assert key in templates.get(name, set()), f"{name}/{key} is used but not templated"
    used = {name for name, _ in references}
    assert used == set(templates), f"templates never used: {set(templates) - used}"
