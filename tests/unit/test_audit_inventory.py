"""Grouping pods by their top owner, and templates of workloads without pods."""

from __future__ import annotations

from typing import Any

import pytest

from distroguard.audit.inventory import WorkloadRef, build_inventory, top_owner
from distroguard.audit.resolve import LOCAL, Lookup, lookup_for
from distroguard.errors import InvalidObject
from distroguard.model.workloads import NotHandled, Skip, Workload, containers_of
from distroguard.registry.credentials import Credentials, CredentialStore


def meta(name: str, ns: str = "shop", owner: tuple[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "namespace": ns, **extra}
    if owner is not None:
        data["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": "u"}]
    return data


def spec(*images: str, **extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)], **extra}


def pod(
    name: str, *images: str, owner: tuple[str, str] | None = None, ns: str = "shop", **extra: Any
) -> dict[str, Any]:
    return {"metadata": meta(name, ns, owner), "spec": spec(*images, **extra)}


def templated(name: str, *images: str, owner: tuple[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": meta(name, owner=owner), "spec": {"template": {"spec": spec(*images)}}}


def cronjob(name: str, image: str) -> dict[str, Any]:
    return {"metadata": meta(name), "spec": {"jobTemplate": {"spec": {"template": {"spec": spec(image)}}}}}


# ------------------------------------------------------------------------------------ containers_of


def test_containers_of_reads_pods_and_templates_like_admission() -> None:
    found = containers_of(
        pod("p", "a:1", "b:2", imagePullSecrets=[{"name": "s"}], serviceAccountName="sa"), "", "Pod"
    )
    assert isinstance(found, Workload)
    assert [(c.name, c.image) for c in found.containers] == [("c0", "a:1"), ("c1", "b:2")]
    assert (found.pull_secrets, found.service_account) == (("s",), "sa")
    found = containers_of(cronjob("nightly", "a:1"), "batch", "CronJob")
    assert isinstance(found, Workload)
    assert found.kind == "CronJob"


def test_containers_of_skips_unknown_kinds_and_imageless_templates() -> None:
    assert isinstance(containers_of({}, "example.com", "Widget"), NotHandled)
    assert isinstance(containers_of(templated("d", ""), "apps", "Deployment"), Skip)
    with pytest.raises(InvalidObject, match="Pod shop/p"):
        containers_of({"metadata": meta("p"), "spec": {"containers": "nope"}}, "", "Pod")


# ---------------------------------------------------------------------------------------- grouping


OWNERS = [
    ("Deployment", templated("web", "debian:12")),
    ("ReplicaSet", templated("web-1", "debian:12", owner=("Deployment", "web"))),
    ("ReplicaSet", templated("web-0", "debian:11", owner=("Deployment", "web"))),  # an old revision
    ("CronJob", cronjob("nightly", "alpine:3")),
    ("Job", templated("nightly-1", "alpine:3", owner=("CronJob", "nightly"))),
    ("StatefulSet", templated("db", "postgres:16")),
    ("Deployment", templated("idle", "python:3.12")),
]


def test_top_owner_follows_controller_references() -> None:
    owners = {WorkloadRef("shop", kind, obj["metadata"]["name"]): obj for kind, obj in OWNERS}
    assert top_owner(pod("web-1-x", "a", owner=("ReplicaSet", "web-1")), owners) == WorkloadRef(
        "shop", "Deployment", "web"
    )
    assert top_owner(pod("n", "a", owner=("Job", "nightly-1")), owners).kind == "CronJob"
    assert top_owner(pod("bare", "a"), owners) == WorkloadRef("shop", "Pod", "bare")
    # An owner that was not listed (a custom controller) is the top.
    assert top_owner(pod("x", "a", owner=("Rollout", "canary")), owners) == WorkloadRef(
        "shop", "Rollout", "canary"
    )


def test_owner_cycles_end() -> None:
    loop = {WorkloadRef("shop", "ReplicaSet", "a"): {"metadata": meta("a", owner=("ReplicaSet", "a"))}}
    assert top_owner(pod("p", "x", owner=("ReplicaSet", "a")), loop).name == "a"


def test_inventory_groups_pods_and_adds_templates_without_pods() -> None:
    pods = [
        pod("web-1-a", "debian:12", owner=("ReplicaSet", "web-1")),
        pod("web-1-b", "debian:12", owner=("ReplicaSet", "web-1")),
        pod("web-0-a", "debian:11", owner=("ReplicaSet", "web-0")),  # mid-rollout: both images run
        pod("nightly-1-a", "alpine:3", owner=("Job", "nightly-1")),
        pod("debug", "busybox:1"),
        pod("other", "busybox:1", ns="elsewhere"),
    ]
    inventory = build_inventory(pods, OWNERS)
    got = {
        (w.ref.namespace, w.ref.kind, w.ref.name): (w.source, w.pods, sorted(c.image for c in w.containers))
        for w in inventory.workloads
    }
    assert got == {
        ("shop", "Deployment", "web"): ("pods", 3, ["debian:11", "debian:12"]),
        ("shop", "CronJob", "nightly"): ("pods", 1, ["alpine:3"]),
        ("shop", "Pod", "debug"): ("pods", 1, ["busybox:1"]),
        ("elsewhere", "Pod", "other"): ("pods", 1, ["busybox:1"]),
        ("shop", "StatefulSet", "db"): ("template", 0, ["postgres:16"]),
        ("shop", "Deployment", "idle"): ("template", 0, ["python:3.12"]),
    }
    assert [w.ref for w in inventory.workloads] == sorted(w.ref for w in inventory.workloads)
    assert inventory.problems == ()


@pytest.mark.parametrize(
    ("kind", "api_version", "obj"),
    [
        ("Deployment", "apps/v1", templated("w", "debian:12")),
        ("StatefulSet", "apps/v1", templated("w", "debian:12")),
        ("DaemonSet", "apps/v1", templated("w", "debian:12")),
        ("ReplicaSet", "apps/v1", templated("w", "debian:12")),
        ("ReplicationController", "v1", templated("w", "debian:12")),
        ("Job", "batch/v1", templated("w", "debian:12")),
        ("CronJob", "batch/v1", cronjob("w", "debian:12")),
    ],
)
def test_every_workload_kind_without_pods_is_audited_through_its_template(
    kind: str, api_version: str, obj: dict[str, Any]
) -> None:
    """What admission checks of each kind, the audit reports when no pod of it runs (scaled to zero)."""
    (found,) = build_inventory([], [(kind, {**obj, "metadata": meta("w", uid="u1")})]).workloads
    assert (found.ref, found.source, found.api_version, found.uid) == (
        WorkloadRef("shop", kind, "w"),
        "template",
        api_version,
        "u1",
    )
    assert [c.image for c in found.containers] == ["debian:12"]


def test_a_kind_outside_the_table_is_not_read_through_a_template() -> None:
    assert build_inventory([], [("Rollout", templated("canary", "debian:12"))]).workloads == ()


def test_a_malformed_object_is_a_problem_not_a_crash() -> None:
    broken = {"metadata": meta("broken"), "spec": {"containers": [{"name": "a", "image": 5}]}}
    inventory = build_inventory([broken, pod("fine", "a:1")], [])
    assert [w.ref.name for w in inventory.workloads] == ["fine"]
    assert len(inventory.problems) == 1
    assert "Pod shop/broken" in inventory.problems[0]


# ------------------------------------------------------------------------------------ credentials


def test_pull_secrets_are_used_only_for_their_registries() -> None:
    store = CredentialStore({"registry.example.com": Credentials(username="u", password="p")})
    assert lookup_for("registry.example.com/app:1", store, "f1") == Lookup("registry.example.com/app:1", "f1")
    assert lookup_for("docker.io/library/debian:12", store, "f1") == Lookup(
        "docker.io/library/debian:12", LOCAL
    )
    assert lookup_for("registry.example.com/app:1", None, "") == Lookup("registry.example.com/app:1")
    assert lookup_for("Not A Reference", store, "f1") == Lookup("Not A Reference")
