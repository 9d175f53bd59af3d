"""The one table of workload kinds, and how to read the containers of their objects.

`KINDS` says, for every kind whose objects run containers: its API coordinates, where its pod spec is,
what the admission webhook is sent of it, and how the audit reads it. Every other list of kinds is derived
from it: the webhook paths (`operator.webhook.routes`), the development webhook
configuration, the audit's lists and its top-owner walk (`audit.cluster`, `audit.inventory`), the audit's
change triggers (`operator.handlers.AUDITED`). The Helm chart cannot import Python: a test renders it and
compares its webhook rules and RBAC rules with this table.

`containers_of` reads a stored object's containers (a Pod, or a workload's pod template) with the bounds
and errors every reader shares: admission (which adds what a review says: the operation, the old object)
and the audit both go through `pod_spec`, `containers_in` and `workload`.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

from distroguard.errors import InvalidObject
from distroguard.model.jsonvalue import is_object
from distroguard.model.platform import ARCH_LABEL

MAX_CONTAINERS = 256
"""Containers of all sections of one pod or template; more are refused before anything is resolved."""
MAX_IMAGE_CHARS = 4096
"""Longest image reference accepted (real ones stay well under 300 characters)."""

Section = Literal["containers", "initContainers", "ephemeralContainers"]
SECTIONS: tuple[Section, ...] = ("initContainers", "containers", "ephemeralContainers")
"""In the order a pod starts them."""


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


# ---------------------------------------------------------------------------------------------- table

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]

AuditRead = Literal["pods", "owners"]
"""How the audit reads a kind's objects:

- `pods`: listed, and grouped by their top owner; changes are followed by the metadata-only pod watch
  (`operator.podwatch`), far cheaper than a kopf watch of every pod's body.
- `owners`: listed; a controller owner reference to this kind is followed upwards from a pod (Pod ->
  ReplicaSet -> Deployment); an object that owns no listed pod and that no listed object controls is
  audited through its pod template; changes are followed by a kopf event handler.
"""


@dataclass(frozen=True, slots=True)
class AdmissionRule:
    """One resource the admission webhook is sent requests for: the kind's own objects, or a subresource."""

    subresource: str | None = None
    """None: the object itself. A subresource named here carries the whole object and may change images."""
    operations: tuple[Operation, ...] = ("CREATE", "UPDATE")
    """What the API server is asked to send (admission checks the operation again)."""


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    group: str
    """API group ("" is the core group)."""
    version: str
    kind: str
    plural: str
    pod_spec_path: tuple[str, ...]
    """Keys from the object to its pod spec."""
    admission: tuple[AdmissionRule, ...] = ()
    """What the webhook is sent of this kind; () when admission does not check it."""
    audit: AuditRead | None = None
    """How the audit reads it; None when the audit does not."""

    @property
    def api_version(self) -> str:
        """`apps/v1`, or `v1` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def admits(self, subresource: str | None) -> bool:
        """Whether admission checks requests for this subresource (None: the object itself)."""
        return any(rule.subresource == subresource for rule in self.admission)


_OBJECT = (AdmissionRule(),)
_TEMPLATE = ("spec", "template", "spec")
_JOB_TEMPLATE = ("spec", "jobTemplate", "spec", "template", "spec")

KINDS: tuple[WorkloadKind, ...] = (
    WorkloadKind(
        "",
        "v1",
        "Pod",
        "pods",
        ("spec",),
        # `kubectl debug` adds ephemeral containers with an UPDATE of this subresource.
        admission=(AdmissionRule(), AdmissionRule("ephemeralcontainers", ("UPDATE",))),
        audit="pods",
    ),
    WorkloadKind("", "v1", "ReplicationController", "replicationcontrollers", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("apps", "v1", "Deployment", "deployments", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("apps", "v1", "StatefulSet", "statefulsets", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("apps", "v1", "DaemonSet", "daemonsets", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("apps", "v1", "ReplicaSet", "replicasets", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("batch", "v1", "Job", "jobs", _TEMPLATE, _OBJECT, "owners"),
    WorkloadKind("batch", "v1", "CronJob", "cronjobs", _JOB_TEMPLATE, _OBJECT, "owners"),
)
"""Kind names are unique across groups (owner references and reports name a workload by kind)."""

BY_GROUP_KIND: Mapping[tuple[str, str], WorkloadKind] = {(k.group, k.kind): k for k in KINDS}
BY_KIND: Mapping[str, WorkloadKind] = {k.kind: k for k in KINDS}
POD = BY_KIND["Pod"]
OWNER_KINDS: tuple[WorkloadKind, ...] = tuple(k for k in KINDS if k.audit == "owners")
"""The kinds the audit lists besides pods, in the table's order."""


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
    """Names of the pod spec's `imagePullSecrets`, in the object's namespace."""
    service_account: str = "default"
    """Whose `imagePullSecrets` also apply."""
    architectures: tuple[str, ...] = ()
    """The `kubernetes.io/arch` values the pod is pinned to (its nodeSelector, or every term of its required
    node affinity); () when it may run on any node."""
    node_name: str = ""
    """The node a scheduled pod runs on (`spec.nodeName`); "" before it is scheduled, and for templates."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to check; allowed."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotHandled:
    """A kind or request distroguard does not know how to check; never allowed silently."""

    reason: str


# -------------------------------------------------------------------------------------------- readers


def containers_of(obj: Mapping[str, Any], group: str, kind: str) -> Workload | Skip | NotHandled:
    """The containers of a stored object (a Pod, or a workload's pod template), as an audit sees them.

    What admission checks of a CREATE, without a review around it: the same kinds, sections, bounds and
    errors (`InvalidObject`).
    """
    found = BY_GROUP_KIND.get((group, kind))
    if found is None:
        return NotHandled(f"distroguard does not check {kind} objects")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    where = f"{namespace}/{name}" if namespace else name
    what = f"{kind} {where}" if where else kind
    spec = pod_spec(obj, found, what)
    return workload(kind, containers_in(spec, what), spec, what)


def pod_spec(obj: Mapping[str, Any], kind: WorkloadKind, what: str) -> PodSpecWire:
    """The object's pod spec, at its kind's path. `what` names the object in errors."""
    path = kind.pod_spec_path
    value: object = obj
    for depth, key in enumerate(path):
        if not is_object(value):
            raise InvalidObject(what, f"{'.'.join(path[:depth]) or 'the object'} is not an object")
        value = value.get(key)
    if not is_object(value):
        raise InvalidObject(what, f"{'.'.join(path)} is missing or not an object")
    return cast(PodSpecWire, value)


def containers_in(spec: PodSpecWire, what: str) -> tuple[Container, ...]:
    """Every container of every section, in `SECTIONS` order; at most `MAX_CONTAINERS` of them."""
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
            # Where a container is, as text, only for an error: a warm review reads several per pod.
            if not is_object(item):
                raise InvalidObject(what, f"{section}[{index}] is not an object")
            name = item.get("name")
            image = item.get("image")
            if not (isinstance(name, str) and name and isinstance(image, str)):
                name = _string(name, what, f"{section}[{index}].name")
                if not name:
                    raise InvalidObject(what, f"{section}[{index}] has no name")
                image = _string(image, what, f"{section}[{index}].image")
            image = image.strip()
            if len(image) > MAX_IMAGE_CHARS:
                raise InvalidObject(
                    what, f"{section}[{index}].image is longer than {MAX_IMAGE_CHARS} characters"
                )
            found.append(Container(name, image, section))
    return tuple(found)


def workload(kind: str, containers: Sequence[Container], spec: PodSpecWire, what: str) -> Workload | Skip:
    """`containers` with an image, and the pod spec's pull credentials; Skip when none names an image."""
    # A template may leave an image out for a higher-level tool to fill in: its pods are checked then.
    named = tuple(c for c in containers if c.image)
    if not named:
        return Skip("no container names an image")
    return Workload(
        kind=kind,
        containers=named,
        pull_secrets=_pull_secrets(spec, what),
        service_account=_string(spec.get("serviceAccountName"), what, "serviceAccountName") or "default",
        architectures=pinned_architectures(spec),
        node_name=node_name if isinstance(node_name := spec.get("nodeName"), str) else "",
    )


def pinned_architectures(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The architectures a pod spec allows, when it pins any: its nodeSelector's `kubernetes.io/arch`, or
    else the values of an `In` expression on that label in every term of its required node affinity (the
    terms are alternatives: one without such an expression allows any architecture). Malformed parts pin
    nothing (the API server validates them)."""
    selector = spec.get("nodeSelector")
    if is_object(selector) and isinstance(selector.get(ARCH_LABEL), str):
        return (selector[ARCH_LABEL],)
    affinity = spec.get("affinity")
    if affinity is None:  # most pods: nothing more to read
        return ()
    node = affinity.get("nodeAffinity") if isinstance(affinity, Mapping) else None
    required = (
        node.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(node, Mapping) else None
    )
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    if not isinstance(terms, list) or not terms:
        return ()
    allowed: dict[str, None] = {}
    for term in terms:
        expressions = term.get("matchExpressions") if isinstance(term, Mapping) else None
        values: list[str] = []
        for e in expressions if isinstance(expressions, list) else []:
            if isinstance(e, Mapping) and e.get("key") == ARCH_LABEL and e.get("operator") == "In":
                listed = e.get("values")
                values += [v for v in (listed if isinstance(listed, list) else []) if isinstance(v, str)]
        if not values:
            return ()
        allowed.update(dict.fromkeys(values))
    return tuple(allowed)


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
