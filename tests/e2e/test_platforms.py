"""Multi-architecture images judged on the platforms the cluster runs, end to end: `distroguard run --dev`
(webhook and audit) against the real kube-apiserver, with Node objects created through the API carrying
the labels a kubelet registers (`kubernetes.io/os`, `kubernetes.io/arch`), and indexes built by
`support.multiarch` pushed to the real registry.

The test control plane runs no kubelet, scheduler or controllers: a Node object stays as created, and a pod
made with `spec.nodeName` is "scheduled" on it. Nodes are cluster-scoped, so every Node made here is
deleted when the test that made it ends, whatever happens (and the module checks that no other arm64 Node
is there to begin with). Policies match only the module's namespaces; namespaces go with their contents
(`support.scratch`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from support import multiarch
from support.images import BuiltIndex, push
from support.kube import ControlPlane
from support.operator_process import OperatorProcess
from support.polling import eventually
from support.registry_server import RegistryServer
from support.scratch import Scratch, unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

POLICY_LABELS = {"e2e.distroguard.dev/module": "platforms"}
NODE_LABELS = {"e2e.distroguard.dev/module": "platforms"}
BOTH = {"linux/amd64", "linux/arm64"}
TOO_LONG_IMAGE = "x" * 5000  # refused by distroguard alone: proves its webhook is being called


def node(name: str, arch: str) -> dict[str, Any]:
    """A Node as a kubelet registers it: its os, arch and hostname labels."""
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        **NODE_LABELS,
    }
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


class Nodes:
    """The Nodes a test made; `close` deletes them all."""

    def __init__(self, kube: ControlPlane) -> None:
        self.kube = kube
        self.names: list[str] = []

    def add(self, arch: str) -> str:
        name = unique(f"node-{arch}")
        self.names.append(name)
        self.kube.create(node(name, arch))
        return name

    def remove(self, name: str) -> None:
        self.kube.kubectl("delete", "node", name, "--ignore-not-found", "--wait=false", check=False)

    def close(self) -> None:
        while self.names:
            self.remove(self.names.pop())


def pod(ns: str, image: str, *, arch: str | None = None, node_name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": image}]}
    if arch is not None:
        spec["nodeSelector"] = {"kubernetes.io/arch": arch}
    if node_name is not None:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": unique("app"), "namespace": ns},
        "spec": spec,
    }


def policy(name: str, ns: str, *, action: str, on_no_platform: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "action": action,
        "match": {"namespaces": [ns]},
        "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
    }
    if on_no_platform is not None:
        spec["onNoPlatform"] = on_no_platform
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": name, "labels": POLICY_LABELS},
        "spec": spec,
    }


def dry_run(kube: ControlPlane, document: dict[str, Any]) -> tuple[bool, str]:
    """(admitted, what kubectl printed on stderr: the denial or the warnings)."""
    done = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(document), check=False)
    return done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, str]:
    def pushed(repo: str, index: BuiltIndex) -> str:
        asyncio.run(push(registry.url, repo, "1", index))
        return f"{registry.address}/{repo}:1"

    return {
        "mixed": pushed(unique("platforms/mixed"), multiarch.mixed()),
        "arm64-only": pushed(unique("platforms/arm64-only"), multiarch.arm64_only()),
    }


@pytest.fixture(scope="module")
def amd64_node(kube: ControlPlane) -> Iterator[str]:
    """The cluster as an amd64-only one: an amd64 Node, and no arm64 Node made by anyone else."""
    listed = kube.kubectl_json("get", "nodes")["items"]
    others = [
        n["metadata"]["name"]
        for n in listed
        if n["metadata"].get("labels", {}).get("kubernetes.io/arch") != "amd64"
    ]
    assert not others, f"the test needs a cluster without other architectures' Nodes; found {others}"
    nodes = Nodes(kube)
    try:
        yield nodes.add("amd64")
    finally:
        nodes.close()


@pytest.fixture(scope="module")
def distroguard(
    kube: ControlPlane, amd64_node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard-platforms")
    log = tmp_path_factory.mktemp("platforms") / "run.log"
    process = OperatorProcess(
        kube,
        unique("distroguard-platforms"),
        own,
        log,
        ["--metrics-port", "0", "--failure-ttl", "1", "--audit-debounce", "0.5"],
    )
    try:
        process.start()
        process.wait_registered()
        probe = scratch.namespace("probe")
        eventually(
            lambda: "longer than 4096 characters" in dry_run(kube, pod(probe, TOO_LONG_IMAGE))[1],
            what="the API server calls distroguard",
        )
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-6000:])
        scratch.close()
    assert code == 0, "distroguard run did not stop cleanly on SIGTERM"


@pytest.fixture
def nodes(kube: ControlPlane) -> Iterator[Nodes]:
    """The test's own Nodes, deleted when it ends."""
    made = Nodes(kube)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def ns(kube: ControlPlane, scratch: Scratch) -> Iterator[str]:
    name = scratch.namespace("platforms")
    try:
        yield name
    finally:
        selector = ",".join(f"{k}={v}" for k, v in POLICY_LABELS.items())
        kube.kubectl("delete", "distropolicies", "-l", selector, "--ignore-not-found", check=False)


def with_policy(kube: ControlPlane, ns: str, **options: Any) -> str:
    name = unique("platforms")
    kube.create(policy(name, ns, **options))
    return name


def deny_musl(kube: ControlPlane, ns: str, distroguard: OperatorProcess, image: str) -> None:
    """A deny no-musl policy for `ns`, in force once a musl-only probe is refused."""
    with_policy(kube, ns, action="deny")
    arm = pod(ns, image, arch="arm64")
    eventually(lambda: not dry_run(kube, arm)[0], what="the policy in force")


# --------------------------------------------------------------------------------------------- tests


def test_nodes_coming_and_going_change_the_next_review_without_a_restart(
    kube: ControlPlane, ns: str, nodes: Nodes, images: dict[str, str], distroguard: OperatorProcess
) -> None:
    deny_musl(kube, ns, distroguard, images["mixed"])
    mixed = pod(ns, images["mixed"])
    # An amd64-only cluster: the mixed image runs as Debian there, and is admitted.
    admitted, stderr = dry_run(kube, mixed)
    assert admitted, stderr
    arm = nodes.add("arm64")
    eventually(lambda: not dry_run(kube, mixed)[0], what="the mixed image denied once an arm64 Node is there")
    admitted, stderr = dry_run(kube, mixed)
    assert "linux/arm64" in stderr, stderr
    assert "musl" in stderr
    assert "linux/amd64:" not in stderr, "the platform that passes is not named"
    nodes.remove(arm)
    eventually(lambda: dry_run(kube, mixed)[0], what="the mixed image admitted again once the Node is gone")
    assert "the cluster's platforms: linux/amd64, linux/arm64" in distroguard.log_text()


def test_a_pod_pinned_to_an_architecture_is_judged_on_it_alone(
    kube: ControlPlane, ns: str, nodes: Nodes, images: dict[str, str], distroguard: OperatorProcess
) -> None:
    deny_musl(kube, ns, distroguard, images["mixed"])  # its probe: a pod pinned to arm64, denied
    nodes.add("arm64")
    eventually(
        lambda: not dry_run(kube, pod(ns, images["mixed"]))[0], what="the arm64 Node counted for reviews"
    )
    # Both architectures in the cluster: pinned to amd64, only the Debian variant is judged.
    admitted, stderr = dry_run(kube, pod(ns, images["mixed"], arch="amd64"))
    assert admitted, stderr
    pinned = pod(ns, images["mixed"], arch="arm64")
    pinned["spec"].pop("nodeSelector")
    pinned["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}
                        ]
                    }
                ]
            }
        }
    }
    admitted, stderr = dry_run(kube, pinned)
    assert not admitted
    assert "musl" in stderr


def test_an_image_offering_none_of_the_clusters_platforms(
    kube: ControlPlane, ns: str, images: dict[str, str], distroguard: OperatorProcess
) -> None:
    name = with_policy(kube, ns, action="warn")  # onNoPlatform: warn, the default
    only_arm = pod(ns, images["arm64-only"])
    expected = "image offers only linux/arm64; the cluster's nodes are linux/amd64"

    def warned() -> str | None:
        admitted, stderr = dry_run(kube, only_arm)
        return stderr if admitted and expected in stderr else None

    stderr = eventually(warned, what="a warning that the image offers none of the cluster's platforms")
    assert "Warning:" in stderr
    kube.kubectl(
        "patch", "distropolicy", name, "--type=merge", "-p", json.dumps({"spec": {"onNoPlatform": "deny"}})
    )

    def denied() -> str | None:
        admitted, stderr = dry_run(kube, only_arm)
        return stderr if not admitted else None

    assert expected in eventually(denied, what="denied once onNoPlatform is deny")


def test_the_audit_judges_each_scheduled_pod_on_its_nodes_platform(
    kube: ControlPlane,
    ns: str,
    nodes: Nodes,
    amd64_node: str,
    images: dict[str, str],
    distroguard: OperatorProcess,
) -> None:
    name = with_policy(kube, ns, action="audit")
    arm = nodes.add("arm64")
    on_amd = pod(ns, images["mixed"], node_name=amd64_node)
    on_arm = pod(ns, images["mixed"], node_name=arm)
    kube.create(on_amd)
    kube.create(on_arm)

    def report(of: dict[str, Any]) -> list[dict[str, Any]] | None:
        found = kube.kubectl(
            "get",
            "policyreport",
            "-n",
            ns,
            f"distroguard-pod-{of['metadata']['name']}",
            "-o",
            "json",
            check=False,
        )
        if found.returncode != 0:
            return None
        return [r for r in json.loads(found.stdout)["results"] if r["policy"] == name] or None

    arm_results = eventually(lambda: report(on_arm), what="the arm64 pod's report")
    amd_results = eventually(lambda: report(on_amd), what="the amd64 pod's report")
    assert [(r["rule"], r["result"]) for r in arm_results] == [("no-musl", "fail")]
    assert arm_results[0]["properties"]["platform"] == "linux/arm64"
    assert arm_results[0]["properties"]["libc"] == "musl"
    assert [(r["rule"], r["result"]) for r in amd_results] == [("no-musl", "pass")]
    assert amd_results[0]["properties"]["platform"] == "linux/amd64"
    assert amd_results[0]["properties"]["libc"] == "glibc"

    # The image's ImageFacts holds both platforms' facts, each listed in the Platforms column.
    def facts() -> dict[str, Any] | None:
        for item in kube.kubectl_json("get", "imagefacts", "-o", "json")["items"]:
            spec = item["spec"]
            judged = {p["platform"] for p in spec["platforms"]}
            if images["mixed"] in [r["image"] for r in spec["references"]] and judged >= BOTH:
                return dict(item)
        return None

    item = eventually(facts, what="the mixed image's ImageFacts with both platforms")
    assert item["spec"]["single"] is False
    assert [o["platform"] for o in item["spec"]["offers"]] == ["linux/amd64", "linux/arm64"]
    table = kube.kubectl("get", "imagefacts", item["metadata"]["name"]).stdout
    row = table.splitlines()[1].split()
    assert row[-2] == "linux/amd64,linux/arm64", table  # Platforms, before Last-Seen
    assert (row[2], row[4]) == ("debian", "glibc"), "the other columns are the first platform's"
    assert [p["platform"] for p in item["spec"]["platforms"]] == ["linux/amd64", "linux/arm64"]
