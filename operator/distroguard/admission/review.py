"""The AdmissionReview v1 wire format: decode a request, build a response.

Decoding checks only what the answer depends on (apiVersion, kind, uid, operation, the objects' shape) and
raises `InvalidReview` naming the first problem; the request's uid travels with the error whenever it could
be read, so that even a refusal names the request. Building a response never fails and always echoes the
uid: allowed, denied (`status.code` 403 and a message), or an error of ours (`status.code` 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, cast, get_args

from distroguard.errors import InvalidReview
from distroguard.model import Decision
from distroguard.model.jsonvalue import is_object

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"

MAX_BODY_BYTES = 7 * 1024 * 1024
"""Largest review decoded: an object and its old version, each up to etcd's 1.5 MiB, with room to spare."""
MAX_WARNINGS = 20
"""Warnings per answer; the API server ignores warnings past 4 KB in total anyway."""
MAX_WARNING_CHARS = 256
"""The API server may truncate a longer warning; we shorten it ourselves, keeping its start."""
MAX_MESSAGE_CHARS = 8 * 1024
"""Longest `status.message`: a denial names every offending container, but stays readable."""

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
OPERATIONS: frozenset[str] = frozenset(get_args(Operation))


# ----------------------------------------------------------------------------------------------- wire


class GroupVersionKindWire(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResourceWire(TypedDict):
    group: str
    version: str
    resource: str


class UserInfoWire(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]


class AdmissionRequestWire(TypedDict):
    uid: str
    kind: GroupVersionKindWire
    resource: GroupVersionResourceWire
    operation: str
    subResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    userInfo: NotRequired[UserInfoWire]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]


class StatusWire(TypedDict):
    code: int
    message: str


class AdmissionResponseWire(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[StatusWire]
    warnings: NotRequired[list[str]]


class AdmissionReviewResponseWire(TypedDict):
    apiVersion: str
    kind: str
    response: AdmissionResponseWire


# ------------------------------------------------------------------------------------------- request


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    def __str__(self) -> str:
        return f"{self.group}/{self.version} {self.kind}" if self.group else f"{self.version} {self.kind}"


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """What distroguard needs of one AdmissionReview request."""

    uid: str
    operation: Operation
    kind: GroupVersionKind
    """The kind of `object`, as the API server names it (not the object's own `kind` field)."""
    resource: str
    """`pods`, `deployments`...; with `sub_resource`, what the request is addressed to."""
    resource_group: str | None = None
    """The resource's API group ("" is the core group), which the server routes by besides the kind's;
    None when the review's is not a string (no path accepts such a request)."""
    sub_resource: str | None = None
    """`ephemeralcontainers`, `status`, `scale`...; None for the resource itself."""
    namespace: str | None = None
    name: str | None = None
    """Empty on CREATE when the object has only a `generateName`."""
    object: Mapping[str, Any] | None = None
    old_object: Mapping[str, Any] | None = None
    dry_run: bool = False
    """The API server will not persist the object; answered the same way, with no side effects."""
    username: str = ""


def decode_review(body: bytes | str | Mapping[str, Any]) -> AdmissionRequest:
    """The request of an AdmissionReview v1, given as its JSON text or already parsed."""
    if isinstance(body, bytes | str):
        if len(body) > MAX_BODY_BYTES:
            raise InvalidReview(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidReview("the body is not valid JSON") from None
    else:
        document = body
    return decode_document(document)


def decode_document(document: object) -> AdmissionRequest:
    """The request of an AdmissionReview v1 already parsed from JSON, whatever JSON value it turned out to be.

    For a server that parsed the body itself: a body that is a JSON string must be refused as one, not
    handed to `decode_review`, which would take the string for JSON text and parse it a second time (a
    review encoded twice would then pass for a review)."""
    if not is_object(document):
        raise InvalidReview(f"expected a JSON object, got {_json_type(document)}")
    request = document.get("request")
    uid = request.get("uid") if is_object(request) else None
    uid = uid if isinstance(uid, str) and uid else None
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION or kind != KIND:
        raise InvalidReview(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got {api_version!r} and {kind!r}", uid
        )
    if not is_object(request):
        raise InvalidReview("'request' is missing or not an object", uid)
    if uid is None:
        raise InvalidReview("'request.uid' is missing or empty")
    return _request(cast(AdmissionRequestWire, request), uid)


def _request(wire: AdmissionRequestWire, uid: str) -> AdmissionRequest:
    operation = wire.get("operation")
    # isinstance first: an unhashable value (a list, an object) in a set lookup raised TypeError, which
    # escaped the server as a 500 page instead of this refusal.
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise InvalidReview(
            f"'request.operation' is {operation!r}, expected one of {', '.join(sorted(OPERATIONS))}", uid
        )
    gvk = wire.get("kind")
    if not (is_object(gvk) and isinstance(gvk.get("group"), str) and isinstance(gvk.get("version"), str)):
        raise InvalidReview("'request.kind' must be an object with group, version and kind", uid)
    if not (isinstance(gvk.get("kind"), str) and gvk["kind"]):
        raise InvalidReview("'request.kind.kind' is missing or empty", uid)
    gvr = wire.get("resource")
    resource = gvr.get("resource") if is_object(gvr) else None
    if not isinstance(resource, str):
        raise InvalidReview("'request.resource.resource' is missing", uid)
    resource_group = gvr.get("group") if is_object(gvr) else None
    new, old = _object(wire, "object", uid), _object(wire, "oldObject", uid)
    if operation in ("CREATE", "UPDATE") and new is None:
        raise InvalidReview(f"'request.object' is missing for a {operation}", uid)
    if operation == "UPDATE" and old is None:
        raise InvalidReview("'request.oldObject' is missing for an UPDATE", uid)
    user = wire.get("userInfo")
    if not is_object(user):
        # The API server always says who asks; a review without it was not sent by one.
        raise InvalidReview("the user info is missing ('request.userInfo' must be an object)", uid)
    username = user.get("username")
    return AdmissionRequest(
        uid=uid,
        operation=cast(Operation, operation),
        kind=GroupVersionKind(gvk["group"], gvk["version"], gvk["kind"]),
        resource=resource,
        resource_group=resource_group if isinstance(resource_group, str) else None,
        sub_resource=_optional_text(wire, "subResource", uid),
        namespace=_optional_text(wire, "namespace", uid),
        name=_optional_text(wire, "name", uid),
        object=new,
        old_object=old,
        dry_run=wire.get("dryRun") is True,
        username=username if isinstance(username, str) else "",
    )


def _object(
    wire: AdmissionRequestWire, key: Literal["object", "oldObject"], uid: str
) -> Mapping[str, Any] | None:
    value = wire.get(key)
    if value is None:
        return None
    if not is_object(value):
        raise InvalidReview(f"'request.{key}' must be an object, got {_json_type(value)}", uid)
    return value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_text(
    wire: AdmissionRequestWire, key: Literal["subResource", "namespace", "name"], uid: str
) -> str | None:
    """A string field that may be absent, null or empty (all None); any other type is refused: taken for
    absent, a `subResource` of `[]` sent the request to the resource's own checks while kopf, reading the
    raw value, found no handler for it."""
    value = wire.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidReview(f"'request.{key}' must be a string, got {_json_type(value)}", uid)
    return _text(value)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# ------------------------------------------------------------------------------------------- response


@dataclass(frozen=True, slots=True)
class AdmissionAnswer:
    """What to answer, before it is put on the wire (`respond`)."""

    allowed: bool
    message: str = ""
    """Why a request is denied; empty when allowed."""
    code: int = 200
    """`status.code`: 403 for a policy denial, 400 for an object we cannot check, 500 for our own error."""
    warnings: tuple[str, ...] = field(default=())
    """Already deduplicated and bounded (see `bounded_warnings`)."""
    decision: Decision | None = field(default=None, compare=False)
    """The evaluation behind the answer, for metrics and logs; None when nothing was evaluated."""
    unresolved: tuple[Exception, ...] = field(default=(), compare=False)
    """Why each image without facts has none (the lookup's error: its class tells a deadline from a
    registry failure, for metrics); the messages carry the same as text."""

    @classmethod
    def allow(cls, warnings: Iterable[str] = ()) -> AdmissionAnswer:
        return cls(True, warnings=bounded_warnings(warnings))

    @classmethod
    def deny(cls, message: str, warnings: Iterable[str] = (), *, code: int = 403) -> AdmissionAnswer:
        return cls(False, _shorten(message, MAX_MESSAGE_CHARS), code, bounded_warnings(warnings))

    @classmethod
    def error(cls, message: str) -> AdmissionAnswer:
        """Our own failure: the request is refused (the webhook's failurePolicy is not consulted), with a
        message saying so."""
        return cls(False, _shorten(f"distroguard internal error: {message}", MAX_MESSAGE_CHARS), 500)


def bounded_warnings(warnings: Iterable[str]) -> tuple[str, ...]:
    """One line each, at most MAX_WARNING_CHARS long, duplicates dropped, at most MAX_WARNINGS of them
    (the last one then says how many were left out)."""
    kept: dict[str, None] = {}
    for warning in warnings:
        text = _shorten(" ".join(warning.split()), MAX_WARNING_CHARS)
        if text:
            kept[text] = None
    unique = list(kept)
    if len(unique) > MAX_WARNINGS:
        left_out = len(unique) - (MAX_WARNINGS - 1)
        unique = [*unique[: MAX_WARNINGS - 1], f"... and {left_out} more warnings"]
    return tuple(unique)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def respond(uid: str, answer: AdmissionAnswer) -> AdmissionReviewResponseWire:
    """The AdmissionReview v1 response document for `answer`, echoing `uid`."""
    response: AdmissionResponseWire = {"uid": uid, "allowed": answer.allowed}
    if not answer.allowed:
        response["status"] = {"code": answer.code, "message": answer.message}
    if answer.warnings:
        response["warnings"] = list(answer.warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def respond_invalid(error: InvalidReview) -> AdmissionReviewResponseWire:
    """The answer to a review that could not be decoded: denied with code 400, with its uid when known."""
    return respond(error.uid or "", AdmissionAnswer.deny(str(error), code=400))
