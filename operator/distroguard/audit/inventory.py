"""Which workloads run which containers: pods grouped by their top owner, and templates with no pods.

A pod's top owner is found by following controller owner references through the objects listed
(Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob). An owner that was not listed (a custom
controller's kind) ends the walk and is the top owner itself. A workload object that owns no listed pod
(scaled to zero, a CronJob between runs, or a cluster without controllers) and that no listed object
controls is audited through its pod template, as an admission review of it would be: `source` tells which.
The kinds are the model's table (`distroguard.model.workloads.KINDS`, those the audit reads as `owners`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from distroguard.errors import InvalidObject
from distroguard.model.workloads import BY_KIND, POD, Container, Workload, containers_of

Source = Literal["pods", "template"]

MAX_OWNER_DEPTH = 8
"""Owner chains are short (Pod, ReplicaSet, Deployment); a longer one is cut here (cycles included)."""


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class AuditedWorkload:
    """One top-level workload and the distinct containers its pods (or its template) run."""

    ref: WorkloadRef
    source: Source
    containers: tuple[Container, ...]
    pods: int = 0
    """Pods listed for it (0 when audited through its template)."""
    pull_secrets: tuple[str, ...] = ()
    service_account: str = "default"
    uid: str = ""
    """The workload object's uid ("" when it was not listed): what a report's owner reference needs."""
    api_version: str = "v1"
    nodes: tuple[str, ...] = ()
    """The nodes its listed pods are scheduled on (`spec.nodeName`), each once: their platforms are those
    its images are judged on."""
    unscheduled: bool = False
    """Some listed pod is not on a node yet, or it is audited through its template: then its images are
    also judged as admission judges them (the cluster's platforms, or the architecture pinned)."""
    architectures: tuple[str, ...] = ()
    """The `kubernetes.io/arch` values its pod spec pins (`Workload.architectures`)."""


@dataclass(frozen=True, slots=True)
class Inventory:
    workloads: tuple[AuditedWorkload, ...]
    problems: tuple[str, ...] = ()
    """Objects that could not be read (a malformed container list...): reported as errors."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _controller(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the controlling owner reference; the first owner when none is marked."""
    refs = _meta(obj).get("ownerReferences")
    if not isinstance(refs, list) or not refs:
        return None
    refs = [r for r in refs if isinstance(r, Mapping) and r.get("kind") and r.get("name")]
    chosen = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return None if chosen is None else (str(chosen["kind"]), str(chosen["name"]))


def api_version_of(kind: str) -> str:
    """The apiVersion of a workload kind of the table (`v1` for Pod and ReplicationController)."""
    found = BY_KIND.get(kind)
    return found.api_version if found is not None else "v1"


def _identity(
    pod: Mapping[str, Any], top: WorkloadRef, owners: Mapping[WorkloadRef, Mapping[str, Any]]
) -> tuple[str, str]:
    """(uid, apiVersion) of a pod's top owner: from the listed object, the pod, or the reference to it."""
    if top.kind == POD.kind:
        return str(_meta(pod).get("uid") or ""), POD.api_version
    listed = owners.get(top)
    if listed is not None:
        return str(_meta(listed).get("uid") or ""), api_version_of(top.kind)
    for obj in (pod, *owners.values()):  # an owner of a kind not listed: its reference says it
        for ref in _meta(obj).get("ownerReferences") or ():
            if isinstance(ref, Mapping) and ref.get("kind") == top.kind and ref.get("name") == top.name:
                return str(ref.get("uid") or ""), str(ref.get("apiVersion") or "v1")
    return "", api_version_of(top.kind)


def _ref(obj: Mapping[str, Any], kind: str) -> WorkloadRef:
    meta = _meta(obj)
    return WorkloadRef(str(meta.get("namespace") or ""), kind, str(meta.get("name") or ""))


def top_owner(pod: Mapping[str, Any], owners: Mapping[WorkloadRef, Mapping[str, Any]]) -> WorkloadRef:
    """Follow controller references from `pod` through `owners` to the top (the pod itself when bare)."""
    current = _ref(pod, POD.kind)
    obj: Mapping[str, Any] | None = pod
    for _ in range(MAX_OWNER_DEPTH):
        if obj is None:
            break
        owner = _controller(obj)
        if owner is None:
            break
        current = WorkloadRef(current.namespace, *owner)
        obj = owners.get(current)
    return current


def _merge(found: dict[tuple[str, str, str], Container], workload: Workload) -> None:
    for container in workload.containers:
        found.setdefault((container.section, container.name, container.image), container)


def build_inventory(
    pods: Iterable[Mapping[str, Any]], owners: Iterable[tuple[str, Mapping[str, Any]]]
) -> Inventory:
    """Group `pods` by top owner; add the template of every top-level workload object without pods.

    `owners` are (kind, object) pairs of the workload objects listed (ReplicaSets, Deployments, Jobs...).
    """
    by_ref: dict[WorkloadRef, Mapping[str, Any]] = {}
    for kind, obj in owners:
        by_ref[_ref(obj, kind)] = obj
    problems: list[str] = []
    containers: dict[WorkloadRef, dict[tuple[str, str, str], Container]] = {}
    counts: dict[WorkloadRef, int] = {}
    nodes: dict[WorkloadRef, dict[str, None]] = {}
    unscheduled: set[WorkloadRef] = set()
    first: dict[WorkloadRef, Workload] = {}
    identity: dict[WorkloadRef, tuple[str, str]] = {}
    for pod in pods:
        try:
            outcome = containers_of(pod, POD.group, POD.kind)
        except InvalidObject as exc:
            problems.append(str(exc))
            continue
        top = top_owner(pod, by_ref)
        counts[top] = counts.get(top, 0) + 1
        if isinstance(outcome, Workload):
            if top not in first:
                first[top] = outcome
                identity[top] = _identity(pod, top, by_ref)
            _merge(containers.setdefault(top, {}), outcome)
            if outcome.node_name:
                nodes.setdefault(top, {})[outcome.node_name] = None
            else:
                unscheduled.add(top)
    workloads = [
        AuditedWorkload(
            ref=ref,
            source="pods",
            containers=tuple(found.values()),
            pods=counts[ref],
            pull_secrets=first[ref].pull_secrets,
            service_account=first[ref].service_account,
            uid=identity[ref][0],
            api_version=identity[ref][1],
            nodes=tuple(nodes.get(ref, {})),
            unscheduled=ref in unscheduled,
            architectures=first[ref].architectures,
        )
        for ref, found in containers.items()
    ]
    covered = set(counts)
    for ref, obj in by_ref.items():
        listed = BY_KIND.get(ref.kind)
        if listed is None or listed.audit != "owners" or ref in covered or _owned_by_listed(obj, ref, by_ref):
            continue
        try:
            outcome = containers_of(obj, listed.group, listed.kind)
        except InvalidObject as exc:
            problems.append(str(exc))
            continue
        if isinstance(outcome, Workload):
            workloads.append(
                AuditedWorkload(
                    ref=ref,
                    source="template",
                    containers=outcome.containers,
                    pull_secrets=outcome.pull_secrets,
                    service_account=outcome.service_account,
                    uid=str(_meta(obj).get("uid") or ""),
                    api_version=listed.api_version,
                    unscheduled=True,
                    architectures=outcome.architectures,
                )
            )
    workloads.sort(key=lambda w: w.ref)
    return Inventory(tuple(workloads), tuple(problems))


def _owned_by_listed(
    obj: Mapping[str, Any], ref: WorkloadRef, by_ref: Mapping[WorkloadRef, Mapping[str, Any]]
) -> bool:
    """Whether a listed workload object controls `obj` (then the owner is audited, not `obj`)."""
    owner = _controller(obj)
    return owner is not None and WorkloadRef(ref.namespace, *owner) in by_ref
