"""Decoding AdmissionReview v1 requests and building responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from distroguard.admission import AdmissionAnswer, decode_review, respond
from distroguard.admission.review import (
    MAX_BODY_BYTES,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    GroupVersionKind,
    bounded_warnings,
    respond_invalid,
)
from distroguard.errors import DistroguardError, InvalidReview
from support.reviews import POD_CREATE_JSON, container, pod_create, pod_spec, review, workload

UID = "0df28fbd-5f5f-4c5a-8f2e-2c8e6d3b8a11"
EXPECTED = "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview"


@pytest.mark.parametrize(
    "body", [POD_CREATE_JSON, POD_CREATE_JSON.encode(), pod_create()], ids=["str", "bytes", "dict"]
)
def test_decode_a_pod_create(body: str | bytes | dict[str, Any]) -> None:
    request = decode_review(body)
    assert request.uid == UID
    assert request.operation == "CREATE"
    assert request.kind == GroupVersionKind("", "v1", "Pod")
    assert str(request.kind) == "v1 Pod"
    assert (request.resource, request.sub_resource) == ("pods", None)
    assert (request.namespace, request.name) == ("shop", "web")
    assert request.object is not None
    assert request.object["metadata"]["name"] == "web"
    assert request.old_object is None
    assert request.dry_run is False
    assert request.username == "kubernetes-admin"


def test_decode_dry_run_and_subresource() -> None:
    old = workload("Pod", pod_spec(container("app", "debian:12")))
    document = review(old, operation="UPDATE", old=old, sub_resource="ephemeralcontainers", dry_run=True)
    request = decode_review(json.dumps(document))
    assert request.dry_run is True
    assert request.sub_resource == "ephemeralcontainers"
    assert str(decode_review(review(workload("Deployment", pod_spec()))).kind) == "apps/v1 Deployment"


def _with(change: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    document = pod_create()
    document["request"].update(change)
    for key in drop:
        del document["request"][key]
    return document


@pytest.mark.parametrize(
    ("body", "problem", "uid"),
    [
        pytest.param(b"{not json", "the body is not valid JSON", None, id="invalid-json"),
        pytest.param(b"[]", "expected a JSON object, got an array", None, id="array"),
        pytest.param(
            b"x" * (MAX_BODY_BYTES + 1), f"the body is larger than {MAX_BODY_BYTES} bytes", None, id="too-big"
        ),
        pytest.param(
            pod_create() | {"apiVersion": "admission.k8s.io/v1beta1"},
            f"{EXPECTED}, got 'admission.k8s.io/v1beta1' and 'AdmissionReview'",
            UID,
            id="v1beta1",
        ),
        pytest.param(
            pod_create() | {"kind": "Pod"},
            f"{EXPECTED}, got 'admission.k8s.io/v1' and 'Pod'",
            UID,
            id="wrong-kind",
        ),
        pytest.param(
            pod_create() | {"request": None}, "'request' is missing or not an object", None, id="no-request"
        ),
        pytest.param(_with({}, drop=("uid",)), "'request.uid' is missing or empty", None, id="no-uid"),
        pytest.param(_with({"uid": ""}), "'request.uid' is missing or empty", None, id="empty-uid"),
        pytest.param(
            _with({"operation": "PATCH"}),
            "'request.operation' is 'PATCH', expected one of CONNECT, CREATE, DELETE, UPDATE",
            UID,
            id="bad-operation",
        ),
        pytest.param(
            _with({"object": None}), "'request.object' is missing for a CREATE", UID, id="no-object"
        ),
        pytest.param(
            _with({"object": []}),
            "'request.object' must be an object, got an array",
            UID,
            id="object-not-object",
        ),
        pytest.param(
            _with({"operation": "UPDATE"}),
            "'request.oldObject' is missing for an UPDATE",
            UID,
            id="update-without-old",
        ),
        pytest.param(
            _with({"kind": "Pod"}),
            "'request.kind' must be an object with group, version and kind",
            UID,
            id="kind-not-gvk",
        ),
        pytest.param(
            _with({"kind": {"group": "", "version": "v1", "kind": ""}}),
            "'request.kind.kind' is missing or empty",
            UID,
            id="empty-kind",
        ),
        pytest.param(
            _with({}, drop=("resource",)), "'request.resource.resource' is missing", UID, id="no-resource"
        ),
        pytest.param(
            _with({}, drop=("userInfo",)),
            "the user info is missing ('request.userInfo' must be an object)",
            UID,
            id="no-user-info",
        ),
        pytest.param(
            _with({"userInfo": "admin"}),
            "the user info is missing ('request.userInfo' must be an object)",
            UID,
            id="user-info-a-string",
        ),
    ],
)
def test_bad_reviews_say_what_is_wrong(body: bytes | dict[str, Any], problem: str, uid: str | None) -> None:
    with pytest.raises(InvalidReview) as caught:
        decode_review(body)
    error = caught.value
    assert isinstance(error, DistroguardError)
    assert error.reason == "invalid-review"
    assert error.problem == problem
    assert str(error) == f"invalid AdmissionReview: {problem}"
    assert error.uid == uid
    answer = respond_invalid(error)
    assert answer["response"] == {
        "uid": uid or "",
        "allowed": False,
        "status": {"code": 400, "message": f"invalid AdmissionReview: {problem}"},
    }


def test_responses_echo_the_uid() -> None:
    assert respond(UID, AdmissionAnswer.allow()) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": UID, "allowed": True},
    }
    denied = respond(UID, AdmissionAnswer.deny('container "app" uses alpine:3 (musl)', ["near EOL"]))
    assert denied["response"] == {
        "uid": UID,
        "allowed": False,
        "status": {"code": 403, "message": 'container "app" uses alpine:3 (musl)'},
        "warnings": ["near EOL"],
    }
    warned = respond(UID, AdmissionAnswer.allow(["a", "b", "a"]))
    assert warned["response"] == {"uid": UID, "allowed": True, "warnings": ["a", "b"]}
    json.dumps(denied)  # plain JSON types only


def test_an_error_of_ours_still_answers_with_the_uid() -> None:
    response = respond(UID, AdmissionAnswer.error("KeyError: 'spec'"))["response"]
    assert response == {
        "uid": UID,
        "allowed": False,
        "status": {"code": 500, "message": "distroguard internal error: KeyError: 'spec'"},
    }


@pytest.mark.parametrize(
    ("warnings", "expected"),
    [
        pytest.param([], (), id="none"),
        pytest.param(["same", "same", "other"], ("same", "other"), id="deduplicated"),
        pytest.param(["two\n  lines"], ("two lines",), id="one-line"),
        pytest.param(["", "  "], (), id="blank-dropped"),
        pytest.param(["x" * 1000], ("x" * (MAX_WARNING_CHARS - 1) + "…",), id="shortened"),
        pytest.param(
            [f"w{i}" for i in range(50)],
            (*(f"w{i}" for i in range(MAX_WARNINGS - 1)), "... and 31 more warnings"),
            id="at-most-20",
        ),
    ],
)
def test_warnings_are_short_unique_and_few(warnings: list[str], expected: tuple[str, ...]) -> None:
    assert bounded_warnings(warnings) == expected


def test_long_denial_messages_are_shortened() -> None:
    message = AdmissionAnswer.deny("m" * 100_000).message
    assert len(message) == 8 * 1024
    assert message.endswith("…")
