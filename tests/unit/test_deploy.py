"""deploy/ and the chart's policy copies are what `scripts/render-deploy` makes from charts/distroguard, and
the manifests agree with the operator: one webhook per path it serves, the policies as shipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from distroguard.admission.decide import ALWAYS_EXCLUDED, IGNORE_LABEL
from distroguard.model.crd import image_facts_crd
from distroguard.model.crd import policy_crd as crd
from distroguard.operator.webhook.routes import WEBHOOKS
from support.kube import Binaries, bin_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = ROOT / "charts" / "distroguard"
SCRIPT = ROOT / "scripts" / "render-deploy"


def helm() -> Path:
    """helm alone: rendering needs no control plane."""
    found = Binaries.at(bin_dir()).helm
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing in {bin_dir()}: run `scripts/testenv build`", pytrace=False)
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents(DEPLOY / "distroguard.yaml") if doc["kind"] == kind]


def test_deploy_is_a_fresh_render() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        env={"HELM": str(helm()), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_chart_policies_are_the_shipped_ones() -> None:
    shipped = {p.name: p.read_text() for p in (ROOT / "policies").glob("*.yaml")}
    copies = {p.name: p.read_text() for p in (CHART / "policies").glob("*.yaml")}
    assert copies == shipped


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_deploy_carries_the_generated_crds() -> None:
    shipped = documents(DEPLOY / "crds.yaml")
    assert crd() in shipped
    assert image_facts_crd() in shipped


def test_one_webhook_per_operator_path() -> None:
    (configuration,) = by_kind("ValidatingWebhookConfiguration")
    found = {
        webhook["clientConfig"]["service"]["path"]: (
            webhook["rules"][0]["apiGroups"],
            webhook["rules"][0]["resources"],
            webhook["rules"][0]["operations"],
        )
        for webhook in configuration["webhooks"]
    }
    expected = {f"/{w.id}": ([w.group], [w.rule_resource], list(w.operations)) for w in WEBHOOKS}
    assert found == expected


def test_webhooks_are_safe_by_default() -> None:
    (configuration,) = by_kind("ValidatingWebhookConfiguration")
    (namespace,) = documents(DEPLOY / "namespace.yaml")
    for webhook in configuration["webhooks"]:
        assert webhook["failurePolicy"] == "Ignore"
        assert webhook["sideEffects"] == "None"
        assert webhook["matchPolicy"] == "Equivalent"
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        names = next(e for e in expressions if e["key"] == "kubernetes.io/metadata.name")
        assert names["operator"] == "NotIn"
        assert set(names["values"]) == ALWAYS_EXCLUDED | {namespace["metadata"]["name"]}
        assert {"key": IGNORE_LABEL, "operator": "NotIn", "values": ["true"]} in expressions
    # cert-manager injects the CA: nothing generated lands in deploy/
    assert "cert-manager.io/inject-ca-from" in configuration["metadata"]["annotations"]
    assert not by_kind("Secret")


def component(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"])


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    deployments = {component(d): d for d in by_kind("Deployment")}
    assert set(deployments) == {"webhook", "audit"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"]
            assert container["livenessProbe"]["httpGet"]["port"] == "liveness"
            if name == "webhook":
                assert container["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    webhook, audit = deployments["webhook"], deployments["audit"]
    assert webhook["spec"]["replicas"] == 2
    assert webhook["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert by_kind("PodDisruptionBudget")
    # One writer: never two audit pods at once, not even during a rollout.
    assert audit["spec"]["replicas"] == 1
    assert audit["spec"]["strategy"] == {"type": "Recreate"}
    assert "--role=audit" in audit["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        audit["spec"]["template"]["spec"]["serviceAccountName"]
        != (webhook["spec"]["template"]["spec"]["serviceAccountName"])
    )


def test_only_the_audit_writes_and_only_what_it_owns() -> None:
    roles = {r["metadata"]["name"]: r for r in by_kind("ClusterRole")}
    writes = {"create", "update", "patch", "delete"}

    def written(role: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (group, resource)
            for rule in role["rules"]
            if writes & set(rule["verbs"])
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        }

    webhook = next(r for name, r in roles.items() if not name.endswith("-audit"))
    audit = next(r for name, r in roles.items() if name.endswith("-audit"))
    assert written(webhook) == set()
    assert written(audit) == {
        ("distroguard.dev", "imagefacts"),
        ("distroguard.dev", "eolcatalogs"),
        ("distroguard.dev", "eolcatalogs/status"),
        ("wgpolicyk8s.io", "policyreports"),
        ("wgpolicyk8s.io", "clusterpolicyreports"),
        ("", "events"),
    }


def test_policy_report_crds_come_with_the_manifests() -> None:
    names = {c["metadata"]["name"] for c in by_kind("CustomResourceDefinition")}
    assert names == {"policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"}


def test_default_policies_audit_only() -> None:
    policies = by_kind("DistroPolicy")
    assert {p["metadata"]["name"] for p in policies} == {p.stem for p in (ROOT / "policies").glob("*.yaml")}
    assert {p["spec"]["action"] for p in policies} == {"audit"}
