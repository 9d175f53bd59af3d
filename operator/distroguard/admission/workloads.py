"""Which containers of a reviewed object to check.

Pods, and the pod templates of the workload controllers, so that `kubectl apply` of a Deployment fails at
once instead of its ReplicaSet failing to create pods later. The kinds, their pod specs and the
subresources checked are the model's table (`distroguard.model.workloads.KINDS`). Every request gets one
of three outcomes:

- `Workload`: these containers to check;
- `Skip`: nothing to check, and why (a DELETE, an UPDATE that changes no image, the `status` subresource);
- `NotHandled`: a kind or subresource distroguard does not know; never allowed silently by the caller.

An object that cannot be checked (a malformed container list, more than MAX_CONTAINERS containers) raises
`InvalidObject`. On UPDATE a Pod's new images alone are checked (its other containers already run: a
`kubectl debug` of a grandfathered pod is not refused for them), while a template's containers are all
checked when any image changed (every pod created from it will need all of them to pass).
"""

from __future__ import annotations

from distroguard.admission.review import AdmissionRequest
from distroguard.model.workloads import (
    BY_GROUP_KIND,
    MAX_CONTAINERS,
    MAX_IMAGE_CHARS,
    POD,
    Container,
    NotHandled,
    Skip,
    Workload,
    containers_in,
    pod_spec,
    workload,
)

__all__ = [
    "IMAGELESS_SUBRESOURCES",
    "MAX_CONTAINERS",
    "MAX_IMAGE_CHARS",
    "Container",
    "NotHandled",
    "Outcome",
    "Skip",
    "Workload",
    "containers_to_check",
]

IMAGELESS_SUBRESOURCES = frozenset({"status", "scale"})
"""Subresources that never change an image, of any kind."""

Outcome = Workload | Skip | NotHandled


def containers_to_check(request: AdmissionRequest) -> Outcome:
    kind = BY_GROUP_KIND.get((request.kind.group, request.kind.kind))
    if kind is None:
        return NotHandled(f"distroguard does not check {request.kind} objects ({request.resource})")
    if request.operation in ("DELETE", "CONNECT"):
        return Skip(f"a {request.operation} runs no new image")
    sub = request.sub_resource
    if sub in IMAGELESS_SUBRESOURCES:
        return Skip(f"the {sub} subresource changes no image")
    if not kind.admits(sub):
        return NotHandled(f"distroguard does not check the {sub} subresource of {request.resource}")
    where = f"{request.namespace}/{request.name}" if request.namespace else request.name
    what = f"{kind.kind} {where}" if request.name else kind.kind
    assert request.object is not None  # decode_review guarantees it for CREATE and UPDATE
    spec = pod_spec(request.object, kind, what)
    containers = containers_in(spec, what)
    if request.operation == "UPDATE":
        assert request.old_object is not None
        old = containers_in(pod_spec(request.old_object, kind, f"the old {what}"), f"the old {what}")
        before = {(c.section, c.name): c.image for c in old}
        changed = [c for c in containers if before.get((c.section, c.name)) != c.image]
        if not changed:
            return Skip("the update changes no image")
        if kind is POD:
            containers = tuple(changed)
    return workload(kind.kind, containers, spec, what)
