"""Pods that a workload controller creates: judged through their owner's template.

A workload's pod template is checked when the workload is created or its images change. The pods its
controller creates afterwards (a replacement after a node drain or a crash, a Job's retry) name the same
images; a date that passed in between (an end of support) must not stop the controller from replacing
them, or the workload shrinks with nobody having changed anything. So, for a pod with a controller owner
reference to a kind of the workload table, whose owner exists (with the reference's uid) and whose
template names the same image for each container checked, every `deny` finding of a policy with
`controlledPods: warn` becomes a warning that names the owner and says what would be denied.

The same holds one level up, for a workload that a controller makes from its own template: the Job a
CronJob starts on its schedule (else a CronJob admitted yesterday would stop running today), the ReplicaSet
a Deployment makes.

Anything else is judged as a bare pod: no controller reference, an owner of another kind, an owner gone or
replaced (another uid), a template with other images (a pod edited, an ephemeral container), an owner
that could not be read within the request's budget (not confirmed), or a policy with
`controlledPods: same-as-policy`. A policy with `controlledPods: deny` goes the other way: for an object
with a controller owner reference, every failing rule of it denies, whatever the rule's action (no owner is
read: nothing is relaxed).

Cheap checks come first: the owner is read (`ControllerLookup`, I/O the operator does) only for a pod
review whose decision denies because of a policy that relaxes it. The decision itself is memoised without
the owner (`DecisionMemo`); `judge_controlled` runs after it and never changes the memoised object.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from distroguard.admission.review import AdmissionRequest
from distroguard.model import Decision, DistroPolicy, Finding
from distroguard.model.decision import (
    UNRESOLVED_RULE,
    VERDICT_OF_ACTION,
    ContainerVerdict,
    Verdict,
    strictest,
)
from distroguard.model.workloads import BY_GROUP_KIND, POD, Workload, WorkloadKind

__all__ = [
    "Controller",
    "ControllerLookup",
    "controller_of",
    "judge_controlled",
    "relax",
    "relaxable",
    "template_names",
    "tighten",
]


@dataclass(frozen=True, slots=True)
class Controller:
    """The workload object a pod's controller owner reference names."""

    kind: WorkloadKind
    namespace: str
    name: str
    uid: str
    """The owner reference's uid: an object of the same name with another uid is not this owner."""

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"


class ControllerLookup(Protocol):
    """How the owner's template is read; `AdmissionCluster` has this method (the operator implements it)."""

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        """The images of `controller`'s pod template by container name (its containers and init
        containers), when an object of its kind, namespace and name with its uid exists; None when none
        does, or when it could not be read within `budget` seconds (not confirmed). Never raises."""


def controller_of(obj: Mapping[str, Any] | None, namespace: str | None) -> Controller | None:
    """The object's controller, when its owner reference marked `controller: true` names a kind of the
    workload table other than Pod (a ReplicaSet, StatefulSet, DaemonSet, Job, CronJob...), with a name and
    a uid."""
    metadata = obj.get("metadata") if obj is not None else None
    refs = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    if not namespace or not isinstance(refs, list):
        return None
    for ref in refs:
        if not isinstance(ref, Mapping) or ref.get("controller") is not True:
            continue
        api_version, kind, name, uid = (ref.get(k) for k in ("apiVersion", "kind", "name", "uid"))
        if not all(isinstance(v, str) and v for v in (api_version, kind, name, uid)):
            return None
        group = str(api_version).rpartition("/")[0]
        found = BY_GROUP_KIND.get((group, str(kind)))
        if found is None or found is POD:
            return None
        return Controller(found, namespace, str(name), str(uid))
    return None


def relaxable(decision: Decision, policies: Sequence[DistroPolicy]) -> frozenset[str]:
    """The names of the policies whose `deny` findings in `decision` a confirmed controller relaxes
    (`controlledPods: warn`); empty when there is nothing to relax."""
    if decision.verdict != "deny":
        return frozenset()
    warn = {p.name for p in policies if p.spec.controlled_pods == "warn"}
    return frozenset(f.policy for f in decision.findings if f.action == "deny" and f.policy in warn)


def template_names(workload: Workload, images: Mapping[str, str]) -> bool:
    """Whether the owner's template names, for each container checked, the same image (by name)."""
    return all(images.get(c.name) == c.image for c in workload.containers)


def relax(
    decision: Decision, policies: frozenset[str], controller: Controller, kind: str = POD.kind
) -> Decision:
    """`decision`, about an object of `kind` made by `controller`, with each `deny` finding of `policies`
    turned into a warning naming `controller`; the containers' and the workload's verdicts follow (a finding
    of another policy may still deny)."""
    what = "pod" if kind == POD.kind else kind
    return _with_findings(
        decision,
        tuple(
            _relaxed(f, what, controller) if f.action == "deny" and f.policy in policies else f
            for f in decision.findings
        ),
    )


def tighten(decision: Decision, policies: Sequence[DistroPolicy]) -> Decision:
    """`decision`, about an object with a controller, with every failing rule of a `controlledPods: deny`
    policy denying: not the findings of an image that could not be inspected (its `onUnresolved` decides),
    nor those a DistroPolicyException covers."""
    strict = {p.name for p in policies if p.spec.controlled_pods == "deny"}
    if not strict:
        return decision
    findings = tuple(
        dataclasses.replace(f, action="deny", facts={**f.facts, "controlledPods": "deny"})
        if f.policy in strict and f.action != "deny" and f.rule != UNRESOLVED_RULE and f.exception is None
        else f
        for f in decision.findings
    )
    return decision if findings == decision.findings else _with_findings(decision, findings)


def _with_findings(decision: Decision, findings: tuple[Finding, ...]) -> Decision:
    """`decision` with other findings: the containers' and the workload's verdicts follow them."""
    by_container: dict[str, list[Verdict]] = {}
    for f in findings:
        by_container.setdefault(f.container, []).append(VERDICT_OF_ACTION[f.action])
    containers = tuple(
        ContainerVerdict(c.container, c.image, strictest(by_container[c.container]), c.digest)
        if c.container in by_container
        else c
        for c in decision.containers
    )
    verdict = strictest([VERDICT_OF_ACTION[f.action] for f in findings]) if findings else "allow"
    return Decision(verdict, containers, findings)


def _relaxed(finding: Finding, what: str, controller: Controller) -> Finding:
    message = (
        f"allowed: {what} of {controller}, whose template names the same images; "
        f"would be denied now: {finding.message}"
    )
    facts = {**finding.facts, "controller": str(controller)}
    return dataclasses.replace(finding, action="warn", message=message, facts=facts)


_LAST_STRICT: list[tuple[Sequence[DistroPolicy], bool]] = []
"""The last policy snapshot asked about, and its answer (a snapshot is known by identity: a change makes a
new one)."""


def _denies_controlled(policies: Sequence[DistroPolicy]) -> bool:
    """Whether any policy says `controlledPods: deny`; worked out once per policy snapshot."""
    if _LAST_STRICT and _LAST_STRICT[0][0] is policies:
        return _LAST_STRICT[0][1]
    strict = any(p.spec.controlled_pods == "deny" for p in policies)
    _LAST_STRICT[:] = [(policies, strict)]
    return strict


async def judge_controlled(
    request: AdmissionRequest,
    workload: Workload,
    decision: Decision,
    policies: Sequence[DistroPolicy],
    lookup: ControllerLookup,
    *,
    deadline: float,
) -> Decision:
    """`decision`, relaxed when the reviewed object (a pod, a Job...) was made by a confirmed controller, or
    tightened by `controlledPods: deny` (see the module's docstring). `deadline`: the `time.monotonic()` by
    which the owner must have been read."""
    strict = bool(decision.findings) and _denies_controlled(policies)
    if strict and controller_of(request.object, request.namespace) is not None:
        decision = tighten(decision, policies)
    if decision.verdict != "deny":
        return decision
    policies_relaxed = relaxable(decision, policies)
    if not policies_relaxed:
        return decision
    controller = controller_of(request.object, request.namespace)
    if controller is None:
        return decision
    images = await lookup.controller_images(controller, budget=max(0.0, deadline - time.monotonic()))
    if images is None or not template_names(workload, images):
        return decision
    return relax(decision, policies_relaxed, controller, workload.kind)
