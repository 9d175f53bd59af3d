"""The one table of workload kinds (`distroguard.model.workloads.KINDS`) and the lists made from it: the
operator's webhook paths and audit triggers, the audit's lists, and the Helm chart, which cannot import the
table and is rendered here and compared with it (its webhook rules and both roles' workload reads)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from distroguard.audit.cluster import Cluster
from distroguard.audit.inventory import api_version_of
from distroguard.model.workloads import BY_KIND, KINDS, OWNER_KINDS, POD, AdmissionRule, WorkloadKind
from distroguard.operator.handlers import AUDITED
from distroguard.operator.webhook.routes import BY_ID, WEBHOOKS
from support.kube import Binaries, bin_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "distroguard"

# What each role reads besides the workload kinds: the chart's other rules, named so that a workload kind
# granted without being in the table stands out.
AUDIT_OTHER_READS = {
    ("distroguard.dev", "distropolicies"),
    ("distroguard.dev", "distropolicyexceptions"),
    ("distroguard.dev", "eolcatalogs"),
    ("distroguard.dev", "imagefacts"),
    ("", "namespaces"),
    ("", "nodes"),
    ("networking.k8s.io", "servicecidrs"),
    ("wgpolicyk8s.io", "policyreports"),
    ("wgpolicyk8s.io", "clusterpolicyreports"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
}
WEBHOOK_OTHER_READS = {
    ("distroguard.dev", "distropolicies"),
    ("distroguard.dev", "distropolicyexceptions"),
    ("distroguard.dev", "eolcatalogs"),
    ("distroguard.dev", "imagefacts"),
    ("", "namespaces"),
    ("", "nodes"),
    ("networking.k8s.io", "servicecidrs"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
}
WEBHOOK_OTHER_GETS = {("", "serviceaccounts"), ("", "secrets")}
"""What the webhook reads one object at a time besides the owner kinds (a pod's pull credentials)."""
READ = {"get", "list", "watch"}


# -------------------------------------------------------------------------------------------- table


def test_kinds_are_named_once() -> None:
    assert len({k.kind for k in KINDS}) == len(KINDS)
    assert len({(k.group, k.plural) for k in KINDS}) == len(KINDS)
    assert len(BY_ID) == len(WEBHOOKS)  # no two rules on one path


def test_every_kind_reads_a_pod_spec() -> None:
    for kind in KINDS:
        assert kind.pod_spec_path[-1] == "spec"
        assert kind.admission or kind.audit, f"{kind.kind} is neither admitted nor audited"
    assert POD.pod_spec_path == ("spec",)
    assert BY_KIND["CronJob"].pod_spec_path == ("spec", "jobTemplate", "spec", "template", "spec")
    assert BY_KIND["Deployment"].api_version == "apps/v1"
    assert POD.api_version == "v1"


def test_webhook_rows_are_the_tables_admission_rules() -> None:
    rows = [(w.id, w.group, w.version, w.rule_resource, w.operations) for w in WEBHOOKS]
    expected = [
        (
            rule.subresource or kind.plural,
            kind.group,
            kind.version,
            f"{kind.plural}/{rule.subresource}" if rule.subresource else kind.plural,
            rule.operations,
        )
        for kind in KINDS
        for rule in kind.admission
    ]
    assert rows == expected
    assert BY_ID["ephemeralcontainers"].accepts("", "pods", "ephemeralcontainers")
    assert BY_ID["ephemeralcontainers"].operations == ("UPDATE",)
    assert not BY_ID["pods"].accepts("", "pods", "ephemeralcontainers")


def test_the_audit_follows_every_owner_kind() -> None:
    assert [k.kind for k in AUDITED] == [k.kind for k in OWNER_KINDS]
    assert {k.kind for k in KINDS if k.audit is not None} == {POD.kind} | {k.kind for k in OWNER_KINDS}
    for kind in KINDS:
        assert api_version_of(kind.kind) == kind.api_version


def test_the_audit_lists_every_owner_kind_with_its_own_client_call() -> None:
    """Each owner kind resolves to the `kubernetes` client's list calls of its group (no request is made)."""
    cluster = Cluster(kubernetes.client.ApiClient())
    try:
        calls = {kind.kind: (namespaced, everywhere) for kind, namespaced, everywhere in cluster._owner_lists}
    finally:
        cluster.close()
    assert set(calls) == {k.kind for k in OWNER_KINDS}
    named = {k: (type(ns.__self__).__name__, ns.__name__, every.__name__) for k, (ns, every) in calls.items()}
    assert named["ReplicaSet"] == (
        "AppsV1Api",
        "list_namespaced_replica_set",
        "list_replica_set_for_all_namespaces",
    )
    assert named["ReplicationController"][:2] == ("CoreV1Api", "list_namespaced_replication_controller")
    assert named["CronJob"][:2] == ("BatchV1Api", "list_namespaced_cron_job")


# -------------------------------------------------------------------------------------------- chart


def helm() -> Path:
    found = Binaries.at(bin_dir()).helm
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing in {bin_dir()}: run `scripts/testenv build`", pytrace=False)
    return found


def render(chart: Path, home: Path) -> list[dict[str, Any]]:
    """`helm template` of `chart` with its default values; helm's own files go under `home`."""
    done = subprocess.run(
        [str(helm()), "template", "distroguard", str(chart), "--namespace", "distroguard"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _reads(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(group, resource) pairs the role may get, list and watch."""
    return {
        (group, resource)
        for rule in role["rules"]
        if set(rule["verbs"]) >= READ
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def _gets_only(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(group, resource) pairs the role may get one by one, and not list."""
    return {
        (group, resource)
        for rule in role["rules"]
        if set(rule["verbs"]) == {"get"}
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def disagreements(objects: Sequence[dict[str, Any]], kinds: Iterable[WorkloadKind]) -> list[str]:
    """Where the rendered chart and `kinds` differ: webhook rules, both roles' workload reads, and the
    owners the webhook reads one by one (a pod's controller: `operator.webhook.controllers`)."""
    kinds = tuple(kinds)
    problems: list[str] = []
    (configuration,) = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    found = set()
    for webhook in configuration["webhooks"]:
        (rule,) = webhook["rules"]
        for group in rule["apiGroups"]:
            for version in rule["apiVersions"]:
                for resource in rule["resources"]:
                    path = webhook["clientConfig"]["service"]["path"]
                    found.add((path, group, version, resource, tuple(rule["operations"]), rule["scope"]))
    expected = {
        (
            f"/{rule.subresource or kind.plural}",
            kind.group,
            kind.version,
            f"{kind.plural}/{rule.subresource}" if rule.subresource else kind.plural,
            rule.operations,
            "Namespaced",
        )
        for kind in kinds
        for rule in kind.admission
    }
    problems += [f"webhook rule not in the table: {row}" for row in sorted(found - expected)]
    problems += [f"webhook rule missing from the chart: {row}" for row in sorted(expected - found)]

    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterRole"}
    audited = {(k.group, k.plural) for k in kinds if k.audit is not None}
    for name, others, wanted in (
        ("distroguard-audit", AUDIT_OTHER_READS, audited),
        ("distroguard", WEBHOOK_OTHER_READS, set()),  # admission reads the object in the review, no list
    ):
        reads = _reads(roles[name]) - others
        problems += [f"{name} reads {row}, not in the table" for row in sorted(reads - wanted)]
        problems += [f"{name} cannot read {row}" for row in sorted(wanted - reads)]
        missing = others - _reads(roles[name])
        problems += [f"{name} no longer reads {row}: update this test" for row in sorted(missing)]
    gets = _gets_only(roles["distroguard"]) - WEBHOOK_OTHER_GETS
    owners = {(k.group, k.plural) for k in kinds if k.audit == "owners"}
    problems += [f"distroguard gets {row}, not in the table" for row in sorted(gets - owners)]
    problems += [f"distroguard cannot get {row}" for row in sorted(owners - gets)]
    problems += [
        f"distroguard no longer gets {row}: update this test"
        for row in sorted(WEBHOOK_OTHER_GETS - _gets_only(roles["distroguard"]))
    ]
    return problems


def test_the_chart_agrees_with_the_table(tmp_path: Path) -> None:
    assert disagreements(render(CHART, tmp_path), KINDS) == []


def test_a_kind_missing_from_the_chart_is_found(tmp_path: Path) -> None:
    chart = tmp_path / "distroguard"
    shutil.copytree(CHART, chart)
    webhooks = chart / "templates" / "webhook.yaml"
    lines = webhooks.read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"id" "cronjobs"' not in line]
    assert len(kept) == len(lines) - 1
    webhooks.write_text("".join(kept))
    audit = chart / "templates" / "audit.yaml"
    assert 'resources: ["jobs", "cronjobs"]' in audit.read_text()
    audit.write_text(audit.read_text().replace('resources: ["jobs", "cronjobs"]', 'resources: ["jobs"]'))
    cronjobs = ("/cronjobs", "batch", "v1", "cronjobs", ("CREATE", "UPDATE"), "Namespaced")
    assert disagreements(render(chart, tmp_path), KINDS) == [
        f"webhook rule missing from the chart: {cronjobs}",
        "distroguard-audit cannot read ('batch', 'cronjobs')",
    ]


def test_a_kind_added_to_the_table_alone_is_found(tmp_path: Path) -> None:
    rollout = WorkloadKind(
        "argoproj.io",
        "v1alpha1",
        "Rollout",
        "rollouts",
        ("spec", "template", "spec"),
        (AdmissionRule(),),
        "owners",
    )
    rendered = render(CHART, tmp_path)
    assert disagreements(rendered, (*KINDS, rollout)) == [
        "webhook rule missing from the chart: "
        "('/rollouts', 'argoproj.io', 'v1alpha1', 'rollouts', ('CREATE', 'UPDATE'), 'Namespaced')",
        "distroguard-audit cannot read ('argoproj.io', 'rollouts')",
        "distroguard cannot get ('argoproj.io', 'rollouts')",
    ]
    # and one dropped from the table while the chart keeps it
    fewer = [k for k in KINDS if k.kind != "StatefulSet"]
    assert disagreements(rendered, fewer) == [
        "webhook rule not in the table: "
        "('/statefulsets', 'apps', 'v1', 'statefulsets', ('CREATE', 'UPDATE'), 'Namespaced')",
        "distroguard-audit reads ('apps', 'statefulsets'), not in the table",
        "distroguard gets ('apps', 'statefulsets'), not in the table",
    ]
