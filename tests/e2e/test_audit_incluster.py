"""The in-cluster audit end to end: `distroguard run --role audit` against the real kube-apiserver and the
real registry writes ImageFacts, PolicyReports, a ClusterPolicyReport and Events; a webhook replica
started afterwards answers a known image from the ImageFacts alone.

The test control plane runs no controllers: Deployments make no pods (they are audited through their
template, as the audit does for a workload scaled to zero) and nothing is garbage-collected, so a deleted
workload's report disappearing is the audit's own doing. Every namespace made here is removed with its
contents at the end of what made it (`support.scratch`), and every policy or ImageFacts a test makes is
deleted, or put back, whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.canary_registry import CanaryRegistry, leaks
from support.distros import ALPINE_ROOT, DEBIAN_9_ROOT, UBUNTU_2404_ROOT, Files
from support.images import ImageBuilder, push
from support.kube import ControlPlane, free_port
from support.manifests import deployment
from support.operator_process import OperatorProcess
from support.polling import eventually
from support.registry_server import RegistryServer
from support.scratch import Scratch, unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

LABELS = {"e2e.distroguard.dev/module": "audit-incluster"}
CHART = Path(__file__).resolve().parents[2] / "charts" / "distroguard"


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, tuple[str, str]]:
    """(tag reference, manifest digest) of each image, by name."""

    def pushed(repo: str, root: Files) -> tuple[str, str]:
        image = ImageBuilder().layer(root).build()
        asyncio.run(push(registry.url, repo, "1", image))
        return f"{registry.address}/{repo}:1", image.digest

    return {
        "alpine": pushed(unique("audit/alpine"), ALPINE_ROOT),
        "debian9": pushed(unique("audit/debian9"), DEBIAN_9_ROOT),
        "ubuntu": pushed(unique("audit/ubuntu2404"), UBUNTU_2404_ROOT),
    }


@pytest.fixture(scope="module")
def ns(kube: ControlPlane) -> Iterator[str]:
    scratch = Scratch(kube)
    try:
        yield scratch.namespace("audited")
    finally:
        scratch.close()


@pytest.fixture(scope="module")
def crds(kube: ControlPlane) -> None:
    """The chart's CRDs, as `helm install` puts them (the audit process itself installs none)."""
    for path in (*sorted((CHART / "crds").glob("*.yaml")), CHART / "files" / "policyreport-crds.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")


@pytest.fixture(scope="module")
def policy(kube: ControlPlane, ns: str, crds: None) -> Iterator[str]:
    """An audit-mode policy for the test's namespace: no musl, a supported distribution."""
    name = unique("audit-e2e")
    kube.create(policy_document(name, ns, support=True))
    try:
        yield name
    finally:
        kube.kubectl("delete", "distropolicy", name, "--ignore-not-found", check=False)


def policy_document(name: str, ns: str, *, support: bool) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"name": "no-musl", "denyLibc": ["musl"]}]
    if support:
        rules.append({"name": "supported-distro", "support": {}})
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {"action": "audit", "match": {"namespaces": [ns]}, "rules": rules},
    }


@pytest.fixture(scope="module")
def workloads(kube: ControlPlane, ns: str, images: dict[str, tuple[str, str]]) -> dict[str, str]:
    """One Deployment per image (created before the audit starts: found by its first audit)."""
    names = {}
    for key, (image, _) in images.items():
        names[key] = f"{key}-app"
        kube.create(deployment(ns, names[key], image))
    return names


@pytest.fixture(scope="module")
def auditor(
    kube: ControlPlane,
    policy: str,
    workloads: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard-audit")
    log = tmp_path_factory.mktemp("audit") / "run.log"
    process = OperatorProcess(
        kube,
        unique("distroguard-audit"),
        own,
        log,
        [
            *("--role", "audit", "--audit-debounce", "0.5"),
            *("--liveness", f"http://127.0.0.1:{free_port()}/healthz"),
            *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
        ],
        dev=False,
    )
    try:
        process.start()
        process.wait_logged("audit completed: ")
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-6000:])
        scratch.close()
    assert code == 0, "distroguard run --role audit did not stop cleanly on SIGTERM"


def reports(kube: ControlPlane, ns: str) -> dict[str, dict[str, Any]]:
    found = kube.kubectl_json("get", "policyreports", "-n", ns, "-o", "json")
    return {item["scope"]["name"]: item for item in found["items"]}


def results(report: dict[str, Any], policy: str) -> dict[str, str]:
    """rule -> result of `policy`'s results in `report`."""
    return {r["rule"]: r["result"] for r in report["results"] if r["policy"] == policy}


def metrics_of(process: OperatorProcess) -> str:
    found = re.search(r"metrics on 127\.0\.0\.1:(\d+)/metrics", process.log_text())
    assert found, "the metrics endpoint was not announced"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_each_workload_gets_a_report_with_its_results(
    kube: ControlPlane, ns: str, policy: str, workloads: dict[str, str], auditor: OperatorProcess
) -> None:
    found = eventually(lambda: len(reports(kube, ns)) == 3 and reports(kube, ns), what="three PolicyReports")
    alpine = found[workloads["alpine"]]
    assert alpine["scope"]["kind"] == "Deployment"
    assert alpine["scope"]["uid"]
    assert alpine["metadata"]["ownerReferences"][0]["uid"] == alpine["scope"]["uid"]
    assert alpine["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "distroguard"
    assert results(alpine, policy)["no-musl"] == "fail"
    failing = next(r for r in alpine["results"] if r["rule"] == "no-musl")
    assert "musl" in failing["message"]
    assert failing["source"] == "distroguard"
    # What Policy Reporter groups and filters by (tests/unit/test_policy_reporter_fields.py), as written.
    assert (failing["category"], failing["severity"], failing["scored"]) == ("C library", "medium", True)
    eol = next(r for r in found[workloads["debian9"]]["results"] if r["rule"] == "supported-distro")
    assert (eol["category"], eol["severity"]) == ("End of life", "high")
    assert failing["properties"]["container"] == "app"
    assert failing["properties"]["libc"] == "musl"
    assert failing["properties"]["digest"].startswith("sha256:")
    assert alpine["summary"]["fail"] >= 1

    assert results(found[workloads["debian9"]], policy) == {"no-musl": "pass", "supported-distro": "fail"}
    assert results(found[workloads["ubuntu"]], policy) == {"no-musl": "pass", "supported-distro": "pass"}
    # The summary counts every policy's results (other modules' policies may cover the namespace too).
    ubuntu = found[workloads["ubuntu"]]
    counted = {kind: sum(r["result"] == kind for r in ubuntu["results"]) for kind in ubuntu["summary"]}
    assert ubuntu["summary"] == counted
    assert counted["pass"] >= 2
    assert counted["fail"] == 0

    summary = kube.kubectl_json("get", "clusterpolicyreport", "distroguard-summary", "-o", "json")
    mine = {r["rule"]: r for r in summary["results"] if r["policy"] == policy}
    assert mine["no-musl"]["result"] == "fail"
    assert mine["no-musl"]["properties"]["fail"] == "1"
    assert mine["no-musl"]["properties"]["pass"] == "2"

    # Debian 9 is past its end of life: its workload is counted for the alert on EOL distributions.
    eol = re.search(
        r'^distroguard_audit_eol_workloads\{os="debian",version="9"\} (\S+)$', metrics_of(auditor), re.M
    )
    assert eol is not None
    assert float(eol.group(1)) >= 1


def test_image_facts_form_the_inventory(
    kube: ControlPlane, images: dict[str, tuple[str, str]], auditor: OperatorProcess
) -> None:
    def by_digest() -> dict[str, dict[str, Any]]:
        items = kube.kubectl_json("get", "imagefacts", "-o", "json")["items"]
        return {item["spec"]["digest"]: item for item in items}

    wanted = {digest for _, digest in images.values()}
    found = eventually(lambda: wanted <= set(by_digest()) and by_digest(), what="an ImageFacts per image")
    alpine = found[images["alpine"][1]]
    assert alpine["metadata"]["name"] == images["alpine"][1].replace(":", "-")
    spec = alpine["spec"]
    (platform,) = spec["platforms"]  # a single-platform image: judged on its one platform
    assert platform["platform"] == "linux/amd64"
    assert platform["manifestDigest"] == images["alpine"][1]
    assert platform["os"]["id"] == "alpine"
    assert platform["libc"]["family"] == "musl"
    assert spec["single"] is True
    assert [o["digest"] for o in spec["offers"]] == [images["alpine"][1]]
    assert spec["access"] == "public"
    # Images with the same content (other tests push this Alpine root too) share one object.
    assert images["alpine"][0] in [r["image"] for r in spec["references"]]
    assert platform["evidence"], "the facts carry their evidence"
    debian9 = found[images["debian9"][1]]["spec"]["platforms"][0]
    assert (debian9["os"]["id"], debian9["os"]["versionId"], debian9["os"]["codename"]) == (
        "debian",
        "9",
        "stretch",
    )
    assert debian9["eol"]["state"] in ("eol", "extended")
    assert debian9["eol"]["date"] < "2026-01-01"
    # `kubectl get imagefacts` reads as an inventory.
    table = kube.kubectl("get", "imagefacts").stdout
    header = table.splitlines()[0].split()
    assert header[:8] == ["NAME", "IMAGE", "OS", "VERSION", "LIBC", "EOL", "SUPPORT", "PLATFORMS"]
    line = next(line for line in table.splitlines() if line.startswith(alpine["metadata"]["name"]))
    assert "alpine" in line.split()
    assert "musl" in line.split()
    assert "linux/amd64" in line.split()


def test_violating_workloads_get_a_warning_event(
    kube: ControlPlane,
    ns: str,
    workloads: dict[str, str],
    images: dict[str, tuple[str, str]],
    auditor: OperatorProcess,
) -> None:
    def events() -> list[dict[str, Any]]:
        found = kube.kubectl_json("get", "events", "-n", ns, "-o", "json")["items"]
        return [e for e in found if e["reason"] == "DistroPolicyViolation"]

    found = eventually(
        lambda: len({e["involvedObject"]["name"] for e in events()}) >= 2 and events(), what="events"
    )
    by_workload = {e["involvedObject"]["name"]: e for e in found}
    assert set(by_workload) == {workloads["alpine"], workloads["debian9"]}
    alpine = by_workload[workloads["alpine"]]
    assert alpine["type"] == "Warning"
    assert alpine["involvedObject"]["kind"] == "Deployment"
    assert "musl" in alpine["message"]
    # Rate-limited: later audits that find the same violations post nothing new.
    count = len(found)
    kube.create(deployment(ns, unique("trigger"), images["ubuntu"][0]))  # a change: another audit
    eventually(lambda: len(reports(kube, ns)) >= 4, what="a report for the new workload")
    assert len([e for e in events() if e["involvedObject"]["name"] in by_workload]) == count


def test_a_policy_change_updates_the_reports(
    kube: ControlPlane, ns: str, policy: str, workloads: dict[str, str], auditor: OperatorProcess
) -> None:
    eventually(lambda: workloads["debian9"] in reports(kube, ns), what="the debian9 report")
    current = kube.kubectl_json("get", "distropolicy", policy, "-o", "json")
    document = policy_document(policy, ns, support=False)
    document["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    try:
        kube.kubectl("replace", "-f", "-", input=json.dumps(document))

        def updated() -> bool:
            report = reports(kube, ns).get(workloads["debian9"])
            return report is not None and results(report, policy) == {"no-musl": "pass"}

        eventually(updated, what="the debian9 report without the removed rule")
    finally:  # the module's policy, as the other tests expect it
        kube.kubectl("replace", "-f", "-", input=json.dumps(policy_document(policy, ns, support=True)))


def test_deleting_a_workload_removes_its_report(
    kube: ControlPlane, ns: str, auditor: OperatorProcess, images: dict[str, tuple[str, str]]
) -> None:
    name = unique("doomed")
    kube.create(deployment(ns, name, images["ubuntu"][0]))
    eventually(lambda: name in reports(kube, ns), what="a report for the new workload")
    kube.kubectl("delete", "deployment", "-n", ns, name)
    eventually(lambda: name not in reports(kube, ns), what="the report gone with its workload")


def test_a_new_webhook_replica_answers_known_images_without_the_registry(
    kube: ControlPlane,
    ns: str,
    policy: str,
    images: dict[str, tuple[str, str]],
    auditor: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
    scratch: Scratch,
) -> None:
    repository = images["alpine"][0].rsplit(":", 1)[0]
    pinned = f"{repository}@{images['alpine'][1]}"
    eventually(
        lambda: any(
            i["spec"]["digest"] == images["alpine"][1]
            for i in kube.kubectl_json("get", "imagefacts", "-o", "json")["items"]
        ),
        what="the alpine image in the inventory",
    )
    warn = unique("warn-musl")
    own = scratch.namespace("distroguard-replica")
    log = tmp_path_factory.mktemp("replica") / "run.log"
    replica = OperatorProcess(
        kube, unique("distroguard-replica"), own, log, ["--role", "webhook", "--metrics-port", "0"]
    )
    try:
        kube.create(
            {
                "apiVersion": "distroguard.dev/v1alpha1",
                "kind": "DistroPolicy",
                "metadata": {"name": warn, "labels": LABELS},
                "spec": {
                    "action": "warn",
                    "match": {"namespaces": [ns]},
                    "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
                },
            }
        )
        replica.start()
        replica.wait_registered()
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": unique("pinned"), "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": pinned}]},
        }

        def warned() -> str | None:
            done = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
            return done.stderr if "musl" in done.stderr else None

        stderr = eventually(warned, what="the replica's warning about musl")
        assert "Warning:" in stderr
        text = metrics_of(replica)
        requests = re.findall(r"^distroguard_registry_requests_total\{[^}]*\} (\S+)$", text, re.M)
        assert sum(float(n) for n in requests) == 0, "the replica asked the registry"
        hits = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("distroguard_cache_lookups_total{")
            and 'tier="facts"' in line
            and 'result="hit"' in line
        ]
        assert sum(hits) >= 1, text
    finally:
        code = replica.stop()
        kube.kubectl("delete", "distropolicy", warn, "--ignore-not-found", check=False)
        print(replica.log_text()[-4000:])
    assert code == 0


def test_image_facts_no_workload_used_for_the_ttl_are_deleted(
    kube: ControlPlane, ns: str, images: dict[str, tuple[str, str]], auditor: OperatorProcess
) -> None:
    digest = "sha256:" + uuid.uuid4().hex * 2
    long_ago = "2026-01-01T00:00:00Z"
    name = digest.replace(":", "-")
    kube.create(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "ImageFacts",
            "metadata": {"name": name},
            "spec": {
                "digest": digest,
                "image": "127.0.0.1:1/gone/app:1",
                "resolvedAt": long_ago,
                "lastSeen": long_ago,
            },
        }
    )
    try:
        kube.create(deployment(ns, unique("poke"), images["ubuntu"][0]))  # a change: another audit

        def gone() -> bool:
            items = kube.kubectl_json("get", "imagefacts", "-o", "json")["items"]
            names = {i["metadata"]["name"] for i in items}
            return name not in names and images["ubuntu"][1].replace(":", "-") in names

        eventually(gone, what="the unused ImageFacts deleted, the used ones kept")
    finally:  # the audit's job; if it did not, the test removes what it made
        kube.kubectl("delete", "imagefacts", name, "--ignore-not-found", check=False)


def test_a_bare_pod_coming_and_going_is_audited_at_once(
    kube: ControlPlane, ns: str, images: dict[str, tuple[str, str]], auditor: OperatorProcess
) -> None:
    # Only the pod watch can start these audits: the interval is an hour, and no workload object changes.
    name = unique("bare")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": images["alpine"][0]}]},
        }
    )
    eventually(lambda: name in reports(kube, ns), what="a report for the new pod")
    assert reports(kube, ns)[name]["scope"]["kind"] == "Pod"
    kube.kubectl("delete", "pod", "-n", ns, name, "--grace-period=0", "--force")
    eventually(lambda: name not in reports(kube, ns), what="the report gone with its pod")


def owner_object(kind: str, ns: str, name: str, image: str) -> dict[str, Any]:
    """A minimal object of each workload kind the audit lists, running `image` (no pods: no controllers)."""
    labels = {"app": name}
    pod = {"containers": [{"name": "app", "image": image}], "restartPolicy": "Never"}
    template = {"metadata": {"labels": labels}, "spec": pod}
    always = {"metadata": {"labels": labels}, "spec": {**pod, "restartPolicy": "Always"}}
    selected = {"selector": {"matchLabels": labels}, "template": always}
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "ReplicationController": ("v1", {"replicas": 1, "selector": labels, "template": always}),
        "Deployment": ("apps/v1", selected),
        "StatefulSet": ("apps/v1", {**selected, "serviceName": name}),
        "DaemonSet": ("apps/v1", selected),
        "ReplicaSet": ("apps/v1", selected),
        "Job": ("batch/v1", {"template": template}),
        "CronJob": ("batch/v1", {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}),
    }
    api_version, spec = specs[kind]
    metadata = {"name": name, "namespace": ns}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


OWNER_KINDS = (
    "ReplicationController",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
)
"""Written out here, not taken from the table: what the audit must report whatever the table says."""


def test_every_workload_kind_created_is_audited_through_its_template(
    kube: ControlPlane, ns: str, images: dict[str, tuple[str, str]], auditor: OperatorProcess
) -> None:
    # Only the audit's watches of these kinds can start these audits (the interval is an hour), and only its
    # lists of them find them; with no controllers, each is read through its pod template.
    names = {kind: unique(kind.lower()) for kind in OWNER_KINDS}
    for kind, name in names.items():
        kube.create(owner_object(kind, ns, name, images["ubuntu"][0]))

    def scopes() -> dict[str, tuple[str, str]] | None:
        found = reports(kube, ns)
        if not all(name in found for name in names.values()):
            return None
        scope = {kind: found[name]["scope"] for kind, name in names.items()}
        return {kind: (scope[kind]["kind"], scope[kind]["apiVersion"]) for kind in names}

    found = eventually(scopes, what="a report for an object of every workload kind")
    assert found == {kind: (kind, owner_object(kind, ns, "x", "y")["apiVersion"]) for kind in OWNER_KINDS}
    for kind, name in names.items():
        kube.kubectl("delete", kind.lower(), "-n", ns, name)


def test_pull_secrets_and_tokens_never_appear_in_reports_facts_events_metrics_or_logs(
    kube: ControlPlane, token_registry: RegistryServer, auditor: OperatorProcess, scratch: Scratch
) -> None:
    assert token_registry.token_server is not None
    assert token_registry.username is not None
    assert token_registry.password is not None
    private = scratch.namespace("private")
    repo = unique("audit/private-alpine")
    image = ImageBuilder().layer(ALPINE_ROOT).build()
    asyncio.run(push(token_registry.url, repo, "1", image, auth=token_registry.push_auth))
    pair = f"{token_registry.username}:{token_registry.password}"
    basic = base64.b64encode(pair.encode()).decode()
    config = json.dumps({"auths": {token_registry.address: {"auth": basic}}})
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "pull", "namespace": private},
            "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
        }
    )
    policy = unique("private-musl")
    kube.create(policy_document(policy, private, support=False))
    try:
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app", "namespace": private},
                "spec": {
                    "imagePullSecrets": [{"name": "pull"}],
                    "containers": [{"name": "app", "image": f"{token_registry.address}/{repo}:1"}],
                },
            }
        )
        # Resolved with the secret: the image's facts decide the rule (musl fails it).
        eventually(
            lambda: (
                results(reports(kube, private).get("app", {"results": []}), policy) == {"no-musl": "fail"}
            ),
            what="the private image audited with its pull secret",
        )
        facts = kube.kubectl_json("get", "imagefacts", image.digest.replace(":", "-"))
        assert facts["spec"]["access"] == "private"  # never served to other namespaces from the cache
        issued = list(token_registry.token_server.issued)
        assert issued, "the registry issued no token: nothing to look for"
        gathered = {
            "reports": kube.kubectl("get", "policyreports,clusterpolicyreports", "-A", "-o", "json").stdout,
            "facts": kube.kubectl("get", "imagefacts", "-o", "json").stdout,
            "events": kube.kubectl("get", "events", "-A", "-o", "json").stdout,
            "metrics": metrics_of(auditor),
            "log": auditor.log_text(),
        }
        for where, text in gathered.items():
            for secret in (token_registry.password, basic, config, *issued):
                assert secret not in text, f"a credential appears in the {where}"
    finally:
        kube.kubectl("delete", "distropolicy", policy, "--ignore-not-found", check=False)


def test_registry_text_never_reaches_reports_events_or_image_facts(
    kube: ControlPlane, auditor: OperatorProcess, scratch: Scratch
) -> None:
    """The canary registry (`support.canary_registry`: its text in every field, header and body a registry
    controls, and every way of failing) behind real pods: what the audit writes to the API server, as
    `kubectl` reads it back, and its metrics, never repeat that text."""
    with CanaryRegistry() as canary:
        where = scratch.namespace("canary")
        policy = unique("canary-policy")
        document = policy_document(policy, where, support=True)
        document["spec"].update(action="warn", onUnresolved="warn")  # warnings: Events too
        kube.create(document)
        try:
            pods = []
            for index in range(0, len(canary.scenarios), 6):
                name = f"canary-{index}"
                chosen = canary.scenarios[index : index + 6]
                containers = [{"name": f"c{i}", "image": canary.ref(s)} for i, s in enumerate(chosen)]
                kube.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": name, "namespace": where},
                        "spec": {"containers": containers},
                    }
                )
                pods.append(name)

            def events() -> str:
                return str(kube.kubectl("get", "events", "-n", where, "-o", "json").stdout)

            eventually(lambda: set(pods) <= set(reports(kube, where)), what="a report for every canary pod")
            eventually(lambda: "DistroPolicyViolation" in events(), what="the audit's Events")
            gathered = {
                "reports": kube.kubectl(
                    "get", "policyreports,clusterpolicyreports", "-A", "-o", "json"
                ).stdout,
                "facts": kube.kubectl("get", "imagefacts", "-o", "json").stdout,
                "events": events(),
                "metrics": metrics_of(auditor),
            }
            assert "unexpected value" in gathered["reports"]  # the failures are reported, in our words
            assert canary.address in gathered["facts"]  # the good scenario's image is in the inventory
            for where_found, text in gathered.items():
                assert not leaks([text]), f"the registry's text appears in the {where_found}"
        finally:
            kube.kubectl("delete", "distropolicy", policy, "--ignore-not-found", check=False)
