"""Which containers of a reviewed object to check.

Pods, and the pod templates of the workload controllers, so that `kubectl apply` of a Deployment fails at
once instead of its ReplicaSet failing to create pods later. Every request gets one of three outcomes:

- `Workload`: these containers to check;
- `Skip`: nothing to check, and why (a DELETE, an UPDATE that changes no image, the `status` subresource);
- `NotHandled`: a kind or subresource distroguard does not know; never allowed silently by the caller.

An object that cannot be checked (a malformed container list, more than MAX_CONTAINERS containers) raises
`InvalidObject`. On UPDATE a Pod's new images alone are checked (its other containers already run: a
`kubectl debug` of a grandfathered pod is not refused for them), while a template's containers are all
checked when any image changed (every pod created from it will need all of them to pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

from distroguard.admission.review import AdmissionRequest
from distroguard.errors import InvalidObject

MAX_CONTAINERS = 256
"""Containers of all sections of one pod or template; more are refused before anything is resolved."""
MAX_IMAGE_CHARS = 4096
"""Longest image reference accepted (real ones stay well under 300 characters)."""

Section = Literal["containers", "initContainers", "ephemeralContainers"]
SECTIONS: tuple[Section, ...] = ("initContainers", "containers", "ephemeralContainers")


# ----------------------------------------------------------------------------------------------- wire


class ContainerWire(TypedDict, total=False):
    name: str
    image: str


class LocalObjectReferenceWire(TypedDict, total=False):
    name: str


class PodSpecWire(TypedDict, total=False):
    containers: list[ContainerWire]
    initContainers: list[ContainerWire]
    ephemeralContainers: list[ContainerWire]
    imagePullSecrets: list[LocalObjectReferenceWire]
    serviceAccountName: str


class PodTemplateSpecWire(TypedDict, total=False):
    spec: PodSpecWire


# --------------------------------------------------------------------------------------------- kinds

# (API group, kind) -> path from the object to its pod spec.
POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Subresources whose requests carry the whole object and may change images.
CHECKED_SUBRESOURCES: dict[str, frozenset[str | None]] = {
    "Pod": frozenset({None, "ephemeralcontainers"}),
}
# Subresources that never change an image.
IMAGELESS_SUBRESOURCES = frozenset({"status", "scale"})


# ------------------------------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    section: Section


@dataclass(frozen=True, slots=True)
class Workload:
    """The containers to check, and where their pull credentials are named."""

    kind: str
    containers: tuple[Container, ...]
    pull_secrets: tuple[str, ...] = ()
    """Names of the pod spec's `imagePullSecrets`, in the request's namespace."""
    service_account: str = "default"
    """Whose `imagePullSecrets` also apply."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to check; allowed."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotHandled:
    """A request distroguard does not know how to check; refused by the caller, never allowed silently."""

    reason: str


Outcome = Workload | Skip | NotHandled


def containers_to_check(request: AdmissionRequest) -> Outcome:
    kind = request.kind.kind
    path = POD_SPEC_PATHS.get((request.kind.group, kind))
    if path is None:
        return NotHandled(f"distroguard does not check {request.kind} objects ({request.resource})")
    if request.operation in ("DELETE", "CONNECT"):
        return Skip(f"a {request.operation} runs no new image")
    sub = request.sub_resource
    if sub in IMAGELESS_SUBRESOURCES:
        return Skip(f"the {sub} subresource changes no image")
    if sub not in CHECKED_SUBRESOURCES.get(kind, frozenset({None})):
        return NotHandled(f"distroguard does not check the {sub} subresource of {request.resource}")
    where = f"{request.namespace}/{request.name}" if request.namespace else request.name
    what = f"{kind} {where}" if request.name else kind
    assert request.object is not None  # decode_review guarantees it for CREATE and UPDATE
    spec = _pod_spec(request.object, path, what)
    containers = _containers(spec, what)
    if request.operation == "UPDATE":
        assert request.old_object is not None
        old = _containers(_pod_spec(request.old_object, path, f"the old {what}"), f"the old {what}")
        before = {(c.section, c.name): c.image for c in old}
        changed = [c for c in containers if before.get((c.section, c.name)) != c.image]
        if not changed:
            return Skip("the update changes no image")
        if kind == "Pod":
            containers = tuple(changed)
    return _workload(kind, containers, spec, what)


def containers_of(obj: Mapping[str, Any], group: str, kind: str) -> Workload | Skip | NotHandled:
    """The containers of a stored object (a Pod, or a workload's pod template), as an audit sees them.

    What `containers_to_check` does for a CREATE, without a review around it: the same kinds, sections,
    bounds and errors (`InvalidObject`).
    """
    path = POD_SPEC_PATHS.get((group, kind))
    if path is None:
        return NotHandled(f"distroguard does not check {kind} objects")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    where = f"{namespace}/{name}" if namespace else name
    what = f"{kind} {where}" if where else kind
    spec = _pod_spec(obj, path, what)
    return _workload(kind, _containers(spec, what), spec, what)


def _workload(kind: str, containers: Sequence[Container], spec: PodSpecWire, what: str) -> Workload | Skip:
    # A template may leave an image out for a higher-level tool to fill in: its pods are checked then.
    named = tuple(c for c in containers if c.image)
    if not named:
        return Skip("no container names an image")
    return Workload(
        kind=kind,
        containers=named,
        pull_secrets=_pull_secrets(spec, what),
        service_account=_string(spec.get("serviceAccountName"), what, "serviceAccountName") or "default",
    )


def _pod_spec(obj: Mapping[str, Any], path: Sequence[str], what: str) -> PodSpecWire:
    value: object = obj
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping):
            raise InvalidObject(what, f"{'.'.join(path[:depth]) or 'the object'} is not an object")
        value = value.get(key)
    if not isinstance(value, Mapping):
        raise InvalidObject(what, f"{'.'.join(path)} is missing or not an object")
    return cast(PodSpecWire, value)


def _containers(spec: PodSpecWire, what: str) -> tuple[Container, ...]:
    sections: list[tuple[Section, list[Any]]] = []
    total = 0
    for section in SECTIONS:
        items = spec.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidObject(what, f"{section} is not a list")
        total += len(items)
        sections.append((section, items))
    # The bound is checked on the lengths alone, before a single container is read.
    if total > MAX_CONTAINERS:
        raise InvalidObject(
            what, f"{total} containers is more than distroguard checks in one pod (at most {MAX_CONTAINERS})"
        )
    found: list[Container] = []
    for section, items in sections:
        for index, item in enumerate(items):
            where = f"{section}[{index}]"
            if not isinstance(item, Mapping):
                raise InvalidObject(what, f"{where} is not an object")
            name = _string(item.get("name"), what, f"{where}.name")
            if not name:
                raise InvalidObject(what, f"{where} has no name")
            image = _string(item.get("image"), what, f"{where}.image").strip()
            if len(image) > MAX_IMAGE_CHARS:
                raise InvalidObject(what, f"{where}.image is longer than {MAX_IMAGE_CHARS} characters")
            found.append(Container(name, image, section))
    return tuple(found)


def _pull_secrets(spec: PodSpecWire, what: str) -> tuple[str, ...]:
    refs = spec.get("imagePullSecrets")
    if refs is None:
        return ()
    if not isinstance(refs, list):
        raise InvalidObject(what, "imagePullSecrets is not a list")
    names: dict[str, None] = {}
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            raise InvalidObject(what, f"imagePullSecrets[{index}] is not an object")
        name = _string(ref.get("name"), what, f"imagePullSecrets[{index}].name")
        if name:
            names[name] = None
    return tuple(names)


def _string(value: object, what: str, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidObject(what, f"{field} is not a string")
    return value
