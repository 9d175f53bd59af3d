"""`admit`: one decoded review -> the answer, by resolving its images and evaluating the policies.

Each distinct image is resolved concurrently within the request's budget. An image not resolved in time, or
whose lookup fails, is evaluated without facts, so that each policy's `onUnresolved` decides; the resolver
keeps looking in the background, so the controller's retry is answered from its cache.

Kubernetes itself is not consulted here: the namespace's labels and the credentials for its private
registries are read by the caller (who picks the resolver whose registry client carries them).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from cachetools import LRUCache

from distroguard.admission.review import MAX_WARNING_CHARS, AdmissionAnswer, AdmissionRequest
from distroguard.admission.workloads import NotHandled, Skip, Workload, containers_to_check
from distroguard.errors import DistroguardError, InvalidObject
from distroguard.model import Decision, DistroPolicy, Finding, ImageFacts, LifecycleLookup, Platform, ScanMode
from distroguard.model.decision import UNRESOLVED_RULE
from distroguard.policy import ContainerImage, EvaluationContext, evaluate

IGNORE_LABEL = "distroguard.dev/ignore"
"""A namespace labelled `distroguard.dev/ignore=true` is not validated."""
ALWAYS_EXCLUDED: frozenset[str] = frozenset({"kube-system"})
"""Never validated, so that a broken distroguard cannot lock a cluster out of its own repair."""
LOCAL_PREFIXES = ("oci:", "docker-archive:")
_NO_LABELS: Mapping[str, str] = MappingProxyType({})
_REASON_KEPT = 40
"""Fewest characters of an unresolved reason a warning keeps when it is shortened in the middle."""


class FactsResolver(Protocol):
    """What `admit` needs of `distroguard.resolver.Resolver`."""

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts: ...

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        """The facts if the cache has them now, else None (no task, no wait: the warm path)."""


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

    @staticmethod
    def key(
        containers: Sequence[ContainerImage],
        policies: Sequence[DistroPolicy],
        catalog: LifecycleLookup,
        context: EvaluationContext,
    ) -> MemoKey | None:
        parts: list[object] = [
            id(policies),
            id(catalog),
            context.namespace,
            tuple(sorted(context.namespace_labels.items())),
            context.kind,
            context.today,
        ]
        for container in containers:
            facts = container.facts
            if facts is None or facts.digest is None:
                return None
            parts.append((container.container, container.image, facts.digest, facts.platform, facts.mode))
        return tuple(parts)

    def decide(
        self,
        containers: Sequence[ContainerImage],
        policies: Sequence[DistroPolicy],
        context: EvaluationContext,
        catalog: LifecycleLookup,
    ) -> Decision:
        key = self.key(containers, policies, catalog, context)
        if key is None:
            return evaluate(containers, policies, context, catalog)
        found = self._store.get(key)
        # Identity, not just the ids in the key: an id can be reused once its object is gone.
        if found is not None and found[0] is policies and found[1] is catalog:
            return found[2]
        decision = evaluate(containers, policies, context, catalog)
        self._store[key] = (policies, catalog, decision)
        return decision


def excluded(namespace: str | None, labels: Mapping[str, str], own_namespace: str | None) -> bool:
    """Whether requests in `namespace` (with these labels) are let through without a check."""
    if namespace is None:
        return False
    return namespace in ALWAYS_EXCLUDED or namespace == own_namespace or labels.get(IGNORE_LABEL) == "true"


async def admit(
    request: AdmissionRequest,
    resolver: FactsResolver,
    policies: Sequence[DistroPolicy],
    catalog: LifecycleLookup,
    *,
    budget: float,
    now: datetime,
    namespace_labels: Mapping[str, str] = _NO_LABELS,
    platform: Platform | None = None,
    local_images: bool = False,
    workload: Workload | None = None,
    memo: DecisionMemo | None = None,
) -> AdmissionAnswer:
    """The answer to `request`. A dry run is answered the same way (nothing here has side effects).

    `budget` bounds the wait for image facts, in seconds; keep it well below the webhook's timeout.
    `local_images` lets `oci:` and `docker-archive:` references be read from this machine's disk: never in
    a webhook, where any pod could name a file of the controller's. `workload`: what
    `containers_to_check(request)` gave, when the caller already asked it (not asked twice on the hot path).
    `memo`: decisions of recent identical reviews (see `DecisionMemo`).
    """
    try:
        outcome = workload if workload is not None else containers_to_check(request)
    except InvalidObject as exc:
        return AdmissionAnswer.deny(f"distroguard cannot check this object: {exc}", code=400)
    if isinstance(outcome, Skip):
        return AdmissionAnswer.allow()
    if isinstance(outcome, NotHandled):
        return AdmissionAnswer.deny(outcome.reason, code=400)
    containers, unresolved = await _resolve_all(outcome, resolver, budget, platform, local_images)
    context = EvaluationContext(
        now=now, namespace=request.namespace, namespace_labels=namespace_labels, kind=outcome.kind
    )
    if memo is None:
        decision = evaluate(containers, policies, context, catalog)
    else:
        decision = memo.decide(containers, policies, context, catalog)
    return dataclasses.replace(answer(decision), decision=decision, unresolved=unresolved)


def answer(decision: Decision) -> AdmissionAnswer:
    """deny: refused, naming each offending container, its image, facts and remedy (the findings' messages);
    warn: allowed with warnings; audit: allowed silently, except that an image admitted though it could not
    be inspected (`onUnresolved: allow`) is admitted with a warning saying so and why. Warnings accompany a
    denial too."""
    warnings = [_warning(finding) for finding in decision.warning_findings()]
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


async def _resolve_all(
    workload: Workload,
    resolver: FactsResolver,
    budget: float,
    platform: Platform | None,
    local_images: bool,
) -> tuple[list[ContainerImage], tuple[Exception, ...]]:
    """The containers with their facts, and the error of each distinct image that has none."""
    known: dict[str, ImageFacts | DistroguardError] = {}
    missing: list[str] = []
    for image in dict.fromkeys(c.image for c in workload.containers):
        facts = None if image.startswith(LOCAL_PREFIXES) else resolver.cached(image, platform)
        if facts is None:
            missing.append(image)
        else:
            known[image] = facts
    if missing:  # a task per image only for what the cache cannot answer at once
        results = await asyncio.gather(
            *(_facts(resolver, image, budget, platform, local_images) for image in missing)
        )
        known.update(zip(missing, results, strict=True))
    found: list[ContainerImage] = []
    for container in workload.containers:
        result = known[container.image]
        if isinstance(result, ImageFacts):
            found.append(ContainerImage(container.name, container.image, result))
        else:
            found.append(ContainerImage(container.name, container.image, None, str(result)))
    return found, tuple(r for r in known.values() if not isinstance(r, ImageFacts))


async def _facts(
    resolver: FactsResolver, image: str, budget: float, platform: Platform | None, local_images: bool
) -> ImageFacts | DistroguardError:
    """The image's facts, or why there are none."""
    if not local_images and image.startswith(LOCAL_PREFIXES):
        return DistroguardError("a local image path is not read by the admission controller")
    try:
        return await resolver.resolve(image, platform, "fast", budget=budget)
    except DistroguardError as exc:
        return exc
