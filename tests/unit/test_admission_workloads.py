"""Which containers of a reviewed object are checked, for every kind, operation and subresource."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from distroguard.admission import NotHandled, Skip, Workload, containers_to_check, decode_review
from distroguard.admission.workloads import MAX_CONTAINERS, Outcome
from distroguard.errors import InvalidObject
from support.reviews import container, pod_create, pod_spec, review, workload

APP = container("app", "python:3.12-alpine")
SIDECAR = container("proxy", "envoyproxy/envoy:v1.31.0")


def outcome(document: dict[str, Any]) -> Outcome:
    return containers_to_check(decode_review(document))


def checked(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    result = outcome(document)
    assert isinstance(result, Workload), result
    return [(c.section, c.name, c.image) for c in result.containers]


def test_pod_as_the_api_server_sends_it() -> None:
    result = outcome(pod_create())
    assert isinstance(result, Workload)
    assert result.kind == "Pod"
    assert [(c.section, c.name, c.image) for c in result.containers] == [
        ("initContainers", "migrate", "registry.example/shop/migrate:1.4"),
        ("containers", "app", "python:3.12-alpine"),
        ("containers", "proxy", "envoyproxy/envoy:v1.31.0"),
    ]
    assert result.pull_secrets == ("regcred",)
    assert result.service_account == "web"


@pytest.mark.parametrize(
    "kind",
    [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    ],
)
def test_every_workload_kind_yields_its_pod_template(kind: str) -> None:
    spec = pod_spec(APP, SIDECAR, initContainers=[container("init", "busybox:1.36")])
    assert checked(review(workload(kind, spec))) == [
        ("initContainers", "init", "busybox:1.36"),
        ("containers", "app", "python:3.12-alpine"),
        ("containers", "proxy", "envoyproxy/envoy:v1.31.0"),
    ]
    result = outcome(review(workload(kind, spec)))
    assert isinstance(result, Workload)
    assert result.kind == kind
    assert result.service_account == "default"


def test_ephemeral_containers_subresource_checks_only_the_new_debug_container() -> None:
    old = workload("Pod", pod_spec(APP, SIDECAR))
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [container("debugger", "nicolaka/netshoot:v0.13")]
    document = review(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers")
    assert checked(document) == [("ephemeralContainers", "debugger", "nicolaka/netshoot:v0.13")]


def test_pod_update_checks_the_changed_image_only() -> None:
    old = workload("Pod", pod_spec(APP, SIDECAR))
    new = workload("Pod", pod_spec(APP, container("proxy", "envoyproxy/envoy:v1.32.0")))
    assert checked(review(new, operation="UPDATE", old=old)) == [
        ("containers", "proxy", "envoyproxy/envoy:v1.32.0")
    ]


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_template_update_checks_every_container_when_one_image_changed(kind: str) -> None:
    old = workload(kind, pod_spec(APP, SIDECAR))
    new = workload(kind, pod_spec(APP, container("proxy", "envoyproxy/envoy:v1.32.0")))
    assert [name for _, name, _ in checked(review(new, operation="UPDATE", old=old))] == ["app", "proxy"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(
            review(
                workload("Deployment", pod_spec(APP)),
                operation="UPDATE",
                old=workload("Deployment", pod_spec(APP)),
            ),
            "the update changes no image",
            id="update-without-image-change",
        ),
        pytest.param(
            review(None, operation="DELETE", old=workload("Pod", pod_spec(APP)), kind="Pod"),
            "a DELETE runs no new image",
            id="delete",
        ),
        pytest.param(
            review(
                workload("Pod", pod_spec(APP)),
                operation="UPDATE",
                old=workload("Pod", pod_spec(APP)),
                sub_resource="status",
            ),
            "the status subresource changes no image",
            id="status",
        ),
        pytest.param(
            review(workload("Deployment", pod_spec(container("app", "")))),
            "no container names an image",
            id="template-without-image",
        ),
    ],
)
def test_nothing_to_check(document: dict[str, Any], reason: str) -> None:
    assert outcome(document) == Skip(reason)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(review(workload("ConfigMap", {})), "does not check v1 ConfigMap", id="unknown-kind"),
        pytest.param(
            review(workload("Pod", pod_spec(APP)), operation="CREATE", sub_resource="binding"),
            "does not check the binding subresource of pods",
            id="unknown-subresource",
        ),
    ],
)
def test_unknown_requests_are_not_handled(document: dict[str, Any], reason: str) -> None:
    result = outcome(document)
    assert isinstance(result, NotHandled)
    assert reason in result.reason


def _too_many() -> dict[str, Any]:
    return review(workload("Pod", pod_spec(*(container(f"c{i}", "busybox:1.36") for i in range(10_000)))))


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param(
            _too_many(),
            f"10000 containers is more than distroguard checks in one pod (at most {MAX_CONTAINERS})",
            id="10000-containers",
        ),
        pytest.param(
            review(workload("Pod", {"containers": {"app": APP}})),
            "containers is not a list",
            id="containers-not-list",
        ),
        pytest.param(
            review(workload("Pod", {"containers": ["app"]})),
            "containers[0] is not an object",
            id="container-not-object",
        ),
        pytest.param(
            review(workload("Pod", pod_spec({"image": "busybox"}))), "containers[0] has no name", id="no-name"
        ),
        pytest.param(
            review(workload("Pod", pod_spec({"name": "a", "image": 7}))),
            "containers[0].image is not a string",
            id="image-not-string",
        ),
        pytest.param(
            review({"kind": "Pod", "metadata": {"name": "web"}}),
            "spec is missing or not an object",
            id="no-spec",
        ),
        pytest.param(
            review(workload("CronJob", pod_spec(APP)) | {"spec": {"jobTemplate": []}}),
            "spec.jobTemplate is not an object",
            id="bad-job-template",
        ),
        pytest.param(
            review(workload("Pod", pod_spec(APP) | {"imagePullSecrets": "regcred"})),
            "imagePullSecrets is not a list",
            id="pull-secrets-not-list",
        ),
    ],
)
def test_objects_that_cannot_be_checked(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        outcome(document)
    assert caught.value.problem == problem
    kind = document["request"]["kind"]["kind"]
    assert str(caught.value) == f"{kind} shop/web: {problem}"


def test_the_container_bound_counts_every_section() -> None:
    many = [container(f"c{i}", "busybox:1.36") for i in range(MAX_CONTAINERS)]
    assert len(checked(review(workload("Pod", pod_spec(*many))))) == MAX_CONTAINERS
    with pytest.raises(InvalidObject, match="257 containers"):
        outcome(review(workload("Pod", pod_spec(*many, initContainers=[container("init", "busybox:1.36")]))))
