"""Admission's side of DistroPolicyExceptions: the reviewed workload as an exception sees it, and the
decision with the exceptions in force applied (`distroguard.policy.exceptions`).

Applied to the decision after `DecisionMemo`: the memo keeps what the policies say (by the day), and an
exception, which can end at any moment and is counted in days left, is applied to every review at its
`now`. A review with no findings, or no exception in force, costs a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from distroguard.admission.review import AdmissionRequest
from distroguard.model import Decision
from distroguard.policy.exceptions import Exceptions, ExceptionTarget, apply_exceptions

POD_TEMPLATE_HASH = "pod-template-hash"
"""The label a Deployment's ReplicaSet puts on its pods: the ReplicaSet is named `<deployment>-<hash>`."""


def target_of(request: AdmissionRequest, kind: str) -> ExceptionTarget:
    """The workload of `request`: its namespace, kind and name ("" before a generated name is set), and the
    workloads controlling it, read from its controller owner reference (and, for a ReplicaSet of a
    Deployment, the Deployment, by the pod-template-hash in the ReplicaSet's name)."""
    obj: Mapping[str, Any] = request.object or {}
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = request.name or _text(metadata.get("name"))
    owners: list[tuple[str, str]] = []
    references = metadata.get("ownerReferences")
    for reference in references if isinstance(references, list) else ():
        if not isinstance(reference, Mapping) or reference.get("controller") is not True:
            continue
        owner_kind, owner_name = _text(reference.get("kind")), _text(reference.get("name"))
        if not owner_kind or not owner_name:
            continue
        owners.append((owner_kind, owner_name))
        labels = metadata.get("labels")
        hash_ = _text(labels.get(POD_TEMPLATE_HASH)) if isinstance(labels, Mapping) else ""
        if owner_kind == "ReplicaSet" and hash_ and owner_name.endswith(f"-{hash_}"):
            owners.append(("Deployment", owner_name[: -len(hash_) - 1]))
    if kind == "ReplicaSet":  # a Deployment's ReplicaSet carries the hash in its own labels and name
        labels = metadata.get("labels")
        hash_ = _text(labels.get(POD_TEMPLATE_HASH)) if isinstance(labels, Mapping) else ""
        if hash_ and name.endswith(f"-{hash_}"):
            owners.append(("Deployment", name[: -len(hash_) - 1]))
    return ExceptionTarget(request.namespace, kind, name, tuple(dict.fromkeys(owners)))


def excepted(
    decision: Decision, exceptions: Exceptions | None, request: AdmissionRequest, kind: str, now: datetime
) -> Decision:
    """`decision` with the live exceptions that cover the workload applied."""
    if exceptions is None or not exceptions.items or not decision.findings:
        return decision
    return apply_exceptions(decision, exceptions.items, target_of(request, kind), now, exceptions.trust)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
