"""Policy scans of the rendered overlays: checkov, and the project's pod-security checks.

A finding fails the test unless k8s/checkov-waivers.yaml waives it with a reason, and a
waiver that matches no finding fails it too.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import yaml
from k8s_helpers import (
    checkov_failures,
    load_waivers,
    pod_security_findings,
    resource_id,
    waived,
)


def _stale(waivers: list[dict], findings: set[tuple[str, str]]) -> list[str]:
    return [
        f"{w['check']} {w['resources']}"
        for w in waivers
        if not any(waived([w], check, resource) for check, resource in findings)
    ]


def test_every_waiver_has_a_reason():
    waivers = load_waivers()
    assert set(waivers) == {"checkov", "nbft"}
    for waiver in waivers["checkov"] + waivers["nbft"]:
        assert waiver["resources"], waiver["check"]
        assert len(waiver["reason"].split()) >= 10, f"{waiver['check']}: say why"


def test_pods_run_as_non_root_without_privileges_and_with_limits(rendered):
    waivers = load_waivers()["nbft"]
    findings = {
        finding
        for docs in rendered.values()
        for doc in docs
        for finding in pod_security_findings(doc)
    }
    unwaived = sorted(f for f in findings if not waived(waivers, *f))
    assert not unwaived, "pod-security findings without a waiver:\n" + "\n".join(
        f"{check} {where}" for check, where in unwaived
    )
    assert not _stale(waivers, findings), f"stale waivers: {_stale(waivers, findings)}"
    # The RayJob's pods were looked at, the autoscaler KubeRay injects included.
    assert ("NBFT_READ_ONLY_ROOT", "RayJob/nbft-sweep/head/autoscaler") in findings


def test_pod_security_checks_catch_a_root_container(rendered):
    rayjob = next(d for d in rendered["dev/sweep"] if d["kind"] == "RayJob")
    broken = copy.deepcopy(rayjob)
    worker = broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    worker["containers"][0]["securityContext"]["runAsNonRoot"] = False
    del worker["containers"][0]["securityContext"]["capabilities"]
    del worker["containers"][0]["resources"]["limits"]["memory"]
    checks = {check for check, _ in pod_security_findings(broken)} - {
        check for check, _ in pod_security_findings(rayjob)
    }
    assert checks == {"NBFT_NON_ROOT", "NBFT_DROP_ALL_CAPABILITIES", "NBFT_LIMITS_MEMORY"}
    assert resource_id(rayjob) == "RayJob/nbft-sweep"


def test_checkov_passes_or_every_finding_is_waived(rendered, checkov, tmp_path: Path):
    for stack, docs in rendered.items():
        (tmp_path / f"{stack.replace('/', '-')}.yaml").write_text(yaml.safe_dump_all(docs))
    done = subprocess.run(
        [
            checkov,
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    findings = set(checkov_failures(done.stdout))
    waivers = load_waivers()["checkov"]
    unwaived = sorted(f for f in findings if not waived(waivers, *f))
    assert not unwaived, "checkov findings without a waiver:\n" + "\n".join(
        f"{check} {resource}" for check, resource in unwaived
    )
    assert not _stale(waivers, findings), f"stale waivers: {_stale(waivers, findings)}"
