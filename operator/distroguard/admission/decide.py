"""`admit`: one decoded review -> the answer. Admission owns the whole sequence; what it needs of the
cluster (a namespace's labels, the resolver for a namespace and a workload's pull secrets) it asks of an
`AdmissionCluster`, which the operator implements.

Cheap checks come first, so that nothing is read from the API server for requests that need no check: the
operation, the protected namespaces, what the object asks to run; then the namespace's labels (opt-out,
policy selectors), then the resolver for its pull secrets, and only then the images. Each distinct image is
resolved concurrently within the request's budget; one not resolved in time, or whose lookup fails, is
evaluated without facts, so that each policy's `onUnresolved` decides (the resolver keeps looking in the
background, so the controller's retry is answered from its cache). Last, a pod that its controller made,
from a template naming the same images, is judged through that template (`admission.controlled`): its
owner is read only when the decision would deny it, within what is left of the same budget.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from cachetools import LRUCache

from distroguard.admission.controlled import Controller, judge_controlled
from distroguard.admission.exceptions import excepted
from distroguard.admission.review import MAX_WARNING_CHARS, AdmissionAnswer, AdmissionRequest
from distroguard.admission.workloads import NotHandled, Skip, Workload, containers_to_check
from distroguard.errors import DistroguardError, InvalidObject
from distroguard.model import (
    Decision,
    DistroPolicy,
    Finding,
    LifecycleLookup,
    Platform,
    ScanMode,
)
from distroguard.model.decision import UNRESOLVED_RULE
from distroguard.model.facts import ImagePlatforms
from distroguard.model.reference import is_local_image
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policy.exceptions import Exceptions, exception_warnings
from distroguard.policy.platforms import judged, merge_platforms, platforms_for
from distroguard.policy.scanning import scan_mode

IGNORE_LABEL = "distroguard.dev/ignore"
"""A namespace labelled `distroguard.dev/ignore=true` is not validated."""
ALWAYS_EXCLUDED: frozenset[str] = frozenset({"kube-system"})
"""Never validated, so that a broken distroguard cannot lock a cluster out of its own repair."""
CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
"""What the webhook configuration asks for; anything else runs no new image."""
_NO_LABELS: Mapping[str, str] = MappingProxyType({})
_REASON_KEPT = 40
"""Fewest characters of an unresolved reason a warning keeps when it is shortened in the middle."""


class FactsResolver(Protocol):
    """How admission resolves a workload's images (`distroguard.resolver.routing.RoutedResolver` fits)."""

    async def resolve_many_platforms(
        self,
        images: Iterable[str],
        *,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> Mapping[str, ImagePlatforms | DistroguardError]:
        """Each image's facts on each of `platforms` it offers (a single-platform image: on its one), or why
        there are none (`DeadlineExceeded` past `budget` seconds); what the cache knows is answered without
        a wait."""


class AdmissionCluster(Protocol):
    """What admission reads from the cluster; the operator implements it (behind its TTL caches)."""

    async def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def platforms(self) -> tuple[Platform, ...]:
        """The platforms that matter now: those of the cluster's nodes (or a fixed list); never empty."""

    async def resolver(self, namespace: str | None, workload: Workload) -> FactsResolver:
        """The resolver for `workload`'s images in `namespace`: credentialed with its pull secrets (its own
        and its service account's) for the registries they name, anonymous for the others."""

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        """The images of a pod's controller's template, by container name; None when that owner (with its
        uid) does not exist or could not be read within `budget` seconds. Never raises (see
        `distroguard.admission.controlled`)."""


MemoKey = tuple[object, ...]


class DecisionMemo:
    """The decisions of recent reviews, by everything a decision depends on: the policies and catalog in
    force (by identity: a policy change makes a new snapshot), the namespace and its labels, the kind, the
    day (support dates are compared by day), and each container's name, image and facts (by digest,
    platform and mode: a digest's facts never change). The replicas of one workload, and the retries of one
    apply, send identical reviews: their decision, with its rendered messages, is made once. Reviews with an
    image not resolved are never remembered (the next one may resolve it)."""

    def __init__(self, size: int = 1024) -> None:
        self._store: LRUCache[MemoKey, tuple[Sequence[DistroPolicy], LifecycleLookup, Decision]] = LRUCache(
            size
        )
        self._size = size
        self._answers: dict[int, tuple[Decision, AdmissionAnswer]] = {}
        """The answers of recent decisions, by the decision's identity (held, so an id is not reused)."""
        self._modes: tuple[Sequence[DistroPolicy], ScanMode] | None = None
        self._container_keys: dict[int, tuple[Sequence[ContainerImage], MemoKey | None]] = {}
        """The containers' part of recent keys, by the containers' identity (held, so an id is not reused)."""
        self._judged: dict[tuple[object, ...], _Judged] = {}
        """Recent workloads' containers as judged, by their containers, platforms (by identity) and mode."""

    def judged(
        self,
        workload: Workload,
        platforms: tuple[Platform, ...],
        where: str,
        mode: ScanMode,
        known: Mapping[str, ImagePlatforms | DistroguardError],
    ) -> tuple[Sequence[ContainerImage], Sequence[int]]:
        """`judge_containers`' answer, remembered while each image's facts are the very same answer of
        the resolver's (a warm resolver answers each image with the object it answered before)."""
        key = (workload.containers, id(platforms), where, mode)
        found = self._judged.get(key)
        if (
            found is not None
            and found.platforms is platforms
            and len(found.answers) == len(known)
            and all(known.get(image) is answer for image, answer in found.answers)
        ):
            return found.containers, found.owners
        containers, owners = judge_containers(workload, known, platforms, where)
        if len(self._judged) >= self._size:
            self._judged.clear()
        made = self._judged[key] = _Judged(platforms, tuple(known.items()), tuple(containers), tuple(owners))
        return made.containers, made.owners

    @staticmethod
    def key(
        containers: Sequence[ContainerImage],
        policies: Sequence[DistroPolicy],
        catalog: LifecycleLookup,
        context: EvaluationContext,
        *,
        head: bool = True,
    ) -> MemoKey | None:
        """Everything the decision depends on (None: not to be remembered); `head=False`: the containers'
        part alone."""
        parts: list[object] = []
        if head:
            parts += (
                id(policies),
                id(catalog),
                context.namespace,
                tuple(sorted(context.namespace_labels.items())),
                context.kind,
                context.today,
            )
        for container in containers:
            facts = container.facts
            if facts is None:
                if not container.no_platform:
                    return None
                parts.append((container.container, container.image, container.no_platform))
                continue
            if facts.digest is None:
                return None
            parts.append(
                (
                    container.container,
                    container.image,
                    facts.digest,
                    facts.platform,
                    facts.mode,
                    container.platform,
                    container.no_platform,
                )
            )
        return tuple(parts)

    def _key(
        self,
        containers: Sequence[ContainerImage],
        policies: Sequence[DistroPolicy],
        catalog: LifecycleLookup,
        context: EvaluationContext,
    ) -> MemoKey | None:
        """`key`, its containers' part made once for the containers `judged` keeps (the same tuple)."""
        kept = self._container_keys.get(id(containers))
        if kept is None or kept[0] is not containers:
            kept = (containers, self.key(containers, (), catalog, context, head=False))
            if len(self._container_keys) >= self._size:
                self._container_keys.clear()
            self._container_keys[id(containers)] = kept
        head = self.key((), policies, catalog, context)
        return None if head is None or kept[1] is None else head + kept[1]

    def decide(
        self,
        containers: Sequence[ContainerImage],
        policies: Sequence[DistroPolicy],
        context: EvaluationContext,
        catalog: LifecycleLookup,
        owners: Sequence[int] = (),
    ) -> Decision:
        """`decision_of`'s answer, remembered (a container judged on several platforms included: its
        subjects, each with its facts and platform, are in the key)."""
        key = self._key(containers, policies, catalog, context)
        if key is None:
            return decision_of(containers, policies, context, catalog, owners)
        found = self._store.get(key)
        # Identity, not just the ids in the key: an id can be reused once its object is gone.
        if found is not None and found[0] is policies and found[1] is catalog:
            return found[2]
        decision = decision_of(containers, policies, context, catalog, owners)
        self._store[key] = (policies, catalog, decision)
        return decision

    def scan_mode(self, policies: Sequence[DistroPolicy]) -> ScanMode:
        """`scan_mode(policies)`, worked out once per policy snapshot (known by identity, as the decisions
        are)."""
        if self._modes is not None and self._modes[0] is policies:
            return self._modes[1]
        mode = scan_mode(policies)
        self._modes = (policies, mode)
        return mode

    def answer(self, decision: Decision) -> AdmissionAnswer:
        """`answer(decision)` with the decision attached, made once for a decision the memo gave (identical
        reviews get the same decision object, and so the same answer: its warnings and message are
        rendered once)."""
        found = self._answers.get(id(decision))
        if found is not None and found[0] is decision:
            return found[1]
        made = dataclasses.replace(answer(decision), decision=decision)
        if len(self._answers) >= self._size:
            self._answers.clear()
        self._answers[id(decision)] = (decision, made)
        return made


@dataclasses.dataclass(frozen=True, slots=True)
class _Judged:
    platforms: tuple[Platform, ...]
    answers: tuple[tuple[str, ImagePlatforms | DistroguardError], ...]
    containers: tuple[ContainerImage, ...]
    owners: tuple[int, ...]


def decision_of(
    containers: Sequence[ContainerImage],
    policies: Sequence[DistroPolicy],
    context: EvaluationContext,
    catalog: LifecycleLookup,
    owners: Sequence[int] = (),
) -> Decision:
    """The evaluation, folded to one verdict per workload container when one was judged on several
    platforms (`owners[i]`: the container `containers[i]` stands for; () when each stands for its own)."""
    decision = evaluate(containers, policies, context, catalog)
    if owners and len(containers) > owners[-1] + 1:  # a container judged on several platforms
        decision = merge_platforms(decision, containers, owners)
    return decision


def protected(namespace: str | None, own_namespace: str | None) -> bool:
    """Whether `namespace` is never validated, whatever its labels (kube-system, distroguard's own)."""
    return namespace is not None and (namespace in ALWAYS_EXCLUDED or namespace == own_namespace)


def opted_out(labels: Mapping[str, str]) -> bool:
    """Whether a namespace with these labels asked not to be validated."""
    return labels.get(IGNORE_LABEL) == "true"


async def admit(
    request: AdmissionRequest,
    cluster: AdmissionCluster,
    policies: Sequence[DistroPolicy],
    catalog: LifecycleLookup,
    *,
    budget: float,
    now: datetime,
    own_namespace: str | None = None,
    local_images: bool = False,
    memo: DecisionMemo | None = None,
    exceptions: Exceptions | None = None,
) -> AdmissionAnswer:
    """The answer to `request`. A dry run is answered the same way (nothing here has side effects).

    `budget` bounds the wait for image facts, in seconds; keep it well below the webhook's timeout.
    `own_namespace`: distroguard's, never validated. `local_images` lets `oci:` and `docker-archive:`
    references be read from this machine's disk: never in a webhook, where any pod could name a file of the
    controller's. `memo`: decisions of recent identical reviews (see `DecisionMemo`). `exceptions`: the
    DistroPolicyExceptions in force, applied at `now` after the memo (`admission.exceptions`).
    """
    if request.operation not in CHECKED_OPERATIONS:
        return AdmissionAnswer.allow()
    namespace = request.namespace
    if protected(namespace, own_namespace):
        return AdmissionAnswer.allow()
    try:
        outcome = containers_to_check(request)
    except InvalidObject as exc:  # refused as any object we cannot check, unless the namespace opted out
        outcome = NotHandled(f"distroguard cannot check this object: {exc}")
    if isinstance(outcome, Skip):
        return AdmissionAnswer.allow()
    labels = _NO_LABELS if namespace is None else await cluster.namespace_labels(namespace)
    if opted_out(labels):
        return AdmissionAnswer.allow()
    if isinstance(outcome, NotHandled):
        return AdmissionAnswer.deny(outcome.reason, code=400)
    resolver = await cluster.resolver(namespace, outcome)
    platforms, where = platforms_for(outcome.architectures, cluster.platforms())
    deadline = time.monotonic() + budget
    mode = scan_mode(policies) if memo is None else memo.scan_mode(policies)
    containers, owners, unresolved = await _with_facts(
        outcome, resolver, budget, platforms, where, local_images, mode, memo
    )
    context = EvaluationContext(now=now, namespace=namespace, namespace_labels=labels, kind=outcome.kind)
    if memo is None:
        remembered = decision = decision_of(containers, policies, context, catalog, owners)
    else:
        remembered = decision = memo.decide(containers, policies, context, catalog, owners)
    # Exceptions first: a finding they cover denies nothing, so no owner is read for it. Both after the memo:
    # an exception's end and a pod's owner are no part of what the memo keys on.
    decision = excepted(decision, exceptions, request, outcome.kind, now)
    decision = await judge_controlled(request, outcome, decision, policies, cluster, deadline=deadline)
    if memo is not None and decision is remembered and not unresolved:
        return memo.answer(decision)  # neither changed it: the answer of the memo's decision
    return dataclasses.replace(answer(decision), decision=decision, unresolved=unresolved)


def answer(decision: Decision) -> AdmissionAnswer:
    """deny: refused, naming each offending container, its image, facts and remedy (the findings' messages);
    warn: allowed with warnings; audit: allowed silently, except that an image admitted though it could not
    be inspected (`onUnresolved: allow`) is admitted with a warning saying so and why; a finding excepted by a
    DistroPolicyException is admitted with a warning naming the exception and its end. Warnings accompany a
    denial too."""
    warnings = [_warning(finding) for finding in decision.warning_findings()]
    warnings.extend(exception_warnings(decision))  # excepted findings that would have denied or warned
    if decision.verdict == "deny":
        reasons = list(dict.fromkeys(decision.messages("deny")))
        return AdmissionAnswer.deny("\n".join(reasons), warnings)
    return AdmissionAnswer.allow(warnings)


def _warning(finding: Finding) -> str:
    """The finding's message as a warning. A warning is cut at MAX_WARNING_CHARS (`bounded_warnings` keeps
    its start); an image that could not be inspected has the middle of its reason (a registry's error can be
    long) shortened instead, so that the warning still ends with what the policy did (allows, warns about)."""
    message = " ".join(finding.message.split())  # as `bounded_warnings` will measure it
    excess = len(message) - MAX_WARNING_CHARS
    reason = " ".join(finding.facts.get("unresolved", "").split())
    if excess <= 0 or finding.rule != UNRESOLVED_RULE or f"({reason})" not in message:
        return finding.message
    keep = len(reason) - excess - 1  # of the reason's characters, beside the "…" put in their place
    if keep < _REASON_KEPT:
        return finding.message  # the rest of the message is long itself: cut at the end as any warning
    head = keep // 2
    short = f"{reason[:head]}…{reason[len(reason) - (keep - head) :]}"
    return message.replace(f"({reason})", f"({short})", 1)


async def _with_facts(
    workload: Workload,
    resolver: FactsResolver,
    budget: float,
    platforms: tuple[Platform, ...],
    where: str,
    local_images: bool,
    mode: ScanMode = "fast",
    memo: DecisionMemo | None = None,
) -> tuple[Sequence[ContainerImage], Sequence[int], tuple[Exception, ...]]:
    """The containers with their facts (a container once per platform when its platforms differ), the
    index of the workload's container each stands for, and the error of each distinct image that has
    none."""
    known: dict[str, ImagePlatforms | DistroguardError] = {}
    wanted: list[str] = []
    for image in dict.fromkeys(c.image for c in workload.containers):
        if is_local_image(image) and not local_images:
            known[image] = DistroguardError("a local image path is not read by the admission controller")
        else:
            wanted.append(image)
    if wanted:
        known.update(
            await resolver.resolve_many_platforms(wanted, platforms=platforms, mode=mode, budget=budget)
        )
    unresolved = tuple(r for r in known.values() if not isinstance(r, ImagePlatforms))
    if memo is not None and not unresolved:
        found, owners = memo.judged(workload, platforms, where, mode, known)
    else:
        found, owners = judge_containers(workload, known, platforms, where)
    return found, owners, unresolved


def judge_containers(
    workload: Workload,
    known: Mapping[str, ImagePlatforms | DistroguardError],
    platforms: tuple[Platform, ...],
    where: str,
) -> tuple[list[ContainerImage], list[int]]:
    """Each container as judged on `platforms` with its image's facts or error (`judged`), and the index
    of the workload's container each stands for."""
    found: list[ContainerImage] = []
    owners: list[int] = []
    for index, container in enumerate(workload.containers):
        result = known[container.image]
        if isinstance(result, ImagePlatforms):
            subjects = judged(container.name, container.image, result, platforms, where)
        else:
            subjects = [ContainerImage(container.name, container.image, None, str(result))]
        found.extend(subjects)
        owners.extend([index] * len(subjects))
    return found, owners
