"""Workloads x facts x policies -> the audit's results. Pure: the clock and the catalog are inputs.

Every policy is evaluated whatever its action: a deny policy's findings are what admission would refuse,
a warn or audit policy's what it would let through with a note. Each image also gets its EOL date from
the catalog (the end of regular security support of its distribution release), for the timeline.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.model import Decision, ImageFacts, Platform, Verdict
from distroguard.model.facts import ImagePlatforms
from distroguard.model.lifecycle import LifecycleLookup, end_date
from distroguard.model.platform import DEFAULT_PLATFORM
from distroguard.model.policy import DistroPolicy
from distroguard.model.record import EolState
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policy.exceptions import Exceptions, ExceptionTarget, apply_exceptions
from distroguard.policy.platforms import cluster_text, judged, merge_platforms
from distroguard.policy.selection import applies

_DEFAULT_JUDGING = ((DEFAULT_PLATFORM,), cluster_text((DEFAULT_PLATFORM,)))

VERDICTS: tuple[Verdict, ...] = ("deny", "warn", "allow")


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """What a person wants to know of one image at a glance."""

    image: str
    facts: ImageFacts | None
    error: str = ""
    distribution: str = "unknown"
    """`Debian 12 (bookworm)`, `no OS`, or `unknown` when unresolved."""
    distro_id: str = "unknown"
    libc: str = "unknown"
    """The family: glibc, musl, none, unknown."""
    libc_version: str = ""
    eol: date | None = None
    """End of regular security support of the release; None when unknown or never (rolling)."""
    extended_until: date | None = None
    eol_state: EolState = "unknown"
    cycle: str = ""
    """The release cycle the EOL catalog matched (`12`, `3.21`), "" when none: the catalog's word, never the
    image's own text (a metric label)."""
    found: ImagePlatforms | None = None
    """The image judged on several platforms: what it offers and each platform's facts (this summary is
    of the first; `platforms` has each one's)."""
    platforms: tuple[ImageSummary, ...] = ()
    """The summary of each platform judged, when `found` is set."""


@dataclass(frozen=True, slots=True)
class ContainerResult:
    container: str
    section: str
    image: ImageSummary
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    workload: AuditedWorkload
    decision: Decision
    containers: tuple[ContainerResult, ...]
    covered: tuple[tuple[str, str], ...] = ()
    """(policy, container) pairs the policies cover: every rule of the policy ran for the container."""

    @property
    def ref(self) -> WorkloadRef:
        return self.workload.ref

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    @property
    def eol(self) -> date | None:
        """The earliest EOL date among its containers' images."""
        dates = [c.image.eol for c in self.containers if c.image.eol is not None]
        return min(dates) if dates else None

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.image.error for c in self.containers if c.image.error))


@dataclass(frozen=True, slots=True)
class AuditResult:
    generated: datetime
    context: str
    namespace: str | None
    """None: every namespace."""
    policies: tuple[str, ...]
    catalog_snapshot: date
    workloads: tuple[WorkloadResult, ...]
    problems: tuple[str, ...] = ()
    """What could not be read or resolved: each makes the audit exit 2."""
    images: tuple[ImageSummary, ...] = field(default=())
    """Every distinct image reference, once (resolved with any credentials)."""

    def counts(self) -> Counter[str]:
        return Counter(w.verdict for w in self.workloads)

    def by_verdict(self, verdict: Verdict) -> list[WorkloadResult]:
        return [w for w in self.workloads if w.verdict == verdict]


def summarize(
    image: str, outcome: ImageFacts | ImagePlatforms | Exception, catalog: LifecycleLookup, today: date
) -> ImageSummary:
    if isinstance(outcome, ImagePlatforms):
        each = tuple(summarize(image, facts, catalog, today) for facts in outcome.facts)
        first = each[0] if each else ImageSummary(image, None)
        return dataclasses.replace(first, found=outcome, platforms=each)
    if not isinstance(outcome, ImageFacts):
        return ImageSummary(image, None, error=str(outcome) or type(outcome).__name__)
    facts = outcome
    libc = facts.libc
    family = libc.family
    if facts.os is None:
        return ImageSummary(
            image,
            facts,
            distribution="no OS",
            distro_id="none",
            libc=family,
            libc_version=libc.version or "",
            eol_state="no-os",
        )
    match = catalog.for_os(facts.os)
    state: EolState = "unknown"
    eol = extended = None
    if match.status == "rolling":
        state = "rolling"
    elif match.cycle is not None:
        state = match.cycle.state(today)
        eol, extended = end_date(match.cycle.eol), end_date(match.cycle.eoes)
    if family == "unknown" and (facts.os.id == "alpine" or "alpine" in facts.os.id_like):
        family = "musl"  # as the policy engine infers it: Alpine is musl-only
    return ImageSummary(
        image,
        facts,
        distribution=match.subject,
        distro_id=facts.os.id,
        libc=family,
        libc_version=libc.version or "",
        eol=eol,
        extended_until=extended,
        eol_state=state,
        cycle=match.cycle.cycle if match.cycle is not None else "",
    )


def audit_workloads(
    workloads: Sequence[AuditedWorkload],
    images: Mapping[tuple[WorkloadRef, str], ImageSummary],
    policies: Sequence[DistroPolicy],
    catalog: LifecycleLookup,
    now: datetime,
    namespace_labels: Mapping[str, Mapping[str, str]],
    judging: Mapping[WorkloadRef, tuple[tuple[Platform, ...], str]] | None = None,
    exceptions: Exceptions | None = None,
) -> tuple[WorkloadResult, ...]:
    """Evaluate each workload's containers; `images` holds the summary of each (workload, image), and
    `judging` the platforms each workload is judged on (`audit.platforms`; linux/amd64 by default): an
    image judged on several is evaluated as admission evaluates it, the worst platform's verdict winning.
    `exceptions`: the DistroPolicyExceptions in force, applied at `now` as admission applies them."""
    results: list[WorkloadResult] = []
    for workload in workloads:
        ref = workload.ref
        context = EvaluationContext(
            now=now,
            namespace=ref.namespace,
            namespace_labels=namespace_labels.get(ref.namespace, {}),
            kind=ref.kind,
        )
        summaries = [images[ref, c.image] for c in workload.containers]
        platforms, where = (judging or {}).get(ref, _DEFAULT_JUDGING)
        subjects: list[ContainerImage] = []
        owners: list[int] = []
        for index, (c, s) in enumerate(zip(workload.containers, summaries, strict=True)):
            found = (
                judged(c.name, c.image, s.found, platforms, where)
                if s.found is not None
                else [ContainerImage(c.name, c.image, s.facts, unresolved=s.error)]
            )
            subjects.extend(found)
            owners.extend([index] * len(found))
        decision = evaluate(subjects, policies, context, catalog)
        if len(subjects) > len(summaries):
            decision = merge_platforms(decision, subjects, owners)
        if exceptions is not None and exceptions.items and decision.findings:
            target = ExceptionTarget(ref.namespace, ref.kind, ref.name)
            decision = apply_exceptions(decision, exceptions.items, target, now, exceptions.trust)
        results.append(
            WorkloadResult(
                workload,
                decision,
                tuple(
                    ContainerResult(c.name, c.section, s, v.verdict)
                    for c, s, v in zip(workload.containers, summaries, decision.containers, strict=True)
                ),
                tuple(
                    dict.fromkeys(
                        (policy.name, subject.container)
                        for policy in policies
                        for subject in subjects
                        if applies(policy.spec, context, subject)
                    )
                ),
            )
        )
    return tuple(results)
