"""DistroPolicyExceptions applied to a decision: pure, with the clock as an input.

A finding is excepted when a live exception (one whose end is after `now`) that the cluster honours covers
its workload, its image and its policy and rule. An excepted finding no longer acts: its action becomes
`audit` (what it would have been is kept in `Finding.exception`), and the verdicts are worked out again
from the findings. Nothing else changes: the finding stays in the decision, so admission warns about it
and reports show it as `skip`.

Where exceptions are honoured (`ExceptionTrust`) follows Kyverno's trust model: by default an exception
in any namespace covers the workloads of its own namespace; `namespaces` narrows where they are honoured;
with an admin namespace, only the exceptions kept there are honoured, and they hold cluster-wide (their
`match.namespaces` then says where).

A criterion the caller cannot judge (`distroguard check` knows no namespace, kind or name: None) holds, as
in a policy's `match`: CI sees what the cluster would do to a workload the exception names. In a cluster a
workload without a name yet (`""`, a pod with generateName) is not covered by an exception that names
workloads.

Apply exceptions to a decision in which each container appears once (after `merge_platforms`): the
verdicts are recomputed by container name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from distroguard.model.decision import VERDICT_OF_ACTION, ContainerVerdict, Decision, Finding, strictest
from distroguard.model.exception import DistroPolicyException, ExceptionUse
from distroguard.policy.images import image_matches

ALL_NAMESPACES: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class ExceptionTrust:
    """Which exceptions a cluster honours (`--exception-namespaces`, `--exception-admin-namespace`)."""

    namespaces: tuple[str, ...] = ALL_NAMESPACES
    """Namespace names or globs whose exceptions are honoured; () honours none."""
    admin_namespace: str | None = None
    """When set, only the exceptions in this namespace are honoured, and they hold cluster-wide."""

    def honours(self, exception: DistroPolicyException) -> bool:
        """Whether `exception` is honoured at all, by where it is kept. One without a namespace (a file
        given to `distroguard check`) always is."""
        namespace = exception.namespace
        if namespace is None:
            return True
        if self.admin_namespace is not None:
            return namespace == self.admin_namespace
        return any(fnmatchcase(namespace, pattern) for pattern in self.namespaces)

    def cluster_wide(self, exception: DistroPolicyException) -> bool:
        return self.admin_namespace is not None and exception.namespace == self.admin_namespace


@dataclass(frozen=True, slots=True)
class ExceptionTarget:
    """The workload a decision is about; None where it is unknown (outside a cluster)."""

    namespace: str | None = None
    kind: str | None = None
    name: str | None = None
    owners: tuple[tuple[str, str], ...] = ()
    """(kind, name) of the workloads that control it (a pod's ReplicaSet and Deployment): an exception for
    a Deployment covers the ReplicaSets and pods it creates."""


@dataclass(frozen=True, slots=True)
class Exceptions:
    """The exceptions in force and where they are honoured: what the operator's store hands to admission."""

    items: tuple[DistroPolicyException, ...] = ()
    trust: ExceptionTrust = ExceptionTrust()


def live(exceptions: Iterable[DistroPolicyException], now: datetime) -> list[DistroPolicyException]:
    """The exceptions that have not ended at `now`."""
    return [e for e in exceptions if now < e.spec.ends]


def ending_within(
    exceptions: Iterable[DistroPolicyException], now: datetime, days: float
) -> list[DistroPolicyException]:
    """The live exceptions that end within `days` of `now`, the first to end first."""
    horizon = now + timedelta(days=days)
    return sorted((e for e in exceptions if now < e.spec.ends <= horizon), key=lambda e: (e.spec.ends, e.ref))


def covers_workload(exception: DistroPolicyException, target: ExceptionTarget, trust: ExceptionTrust) -> bool:
    """Whether `exception` covers the workload (its namespace, and its or a controlling owner's kind and
    name), whatever its images."""
    match = exception.spec.match
    namespace = target.namespace
    if namespace is not None:
        own = exception.namespace
        if own is not None and namespace != own and not trust.cluster_wide(exception):
            return False
        if match.namespaces and not any(fnmatchcase(namespace, p) for p in match.namespaces):
            return False
    if not match.kinds and not match.names:
        return True
    return _names(exception, target.kind, target.name) or any(
        _names(exception, kind, name) for kind, name in target.owners
    )


def _names(exception: DistroPolicyException, kind: str | None, name: str | None) -> bool:
    match = exception.spec.match
    if match.kinds and kind is not None and not any(kind.lower() == k.lower() for k in match.kinds):
        return False
    return not match.names or name is None or any(fnmatchcase(name, p) for p in match.names)


def covers_finding(exception: DistroPolicyException, finding: Finding) -> bool:
    """Whether `exception` names the finding's policy and rule, and matches its image."""
    spec = exception.spec
    if not any(ref.covers(finding.policy, finding.rule) for ref in spec.policies):
        return False
    return not spec.match.images or image_matches(spec.match.images, finding.image)


def use_of(exception: DistroPolicyException, finding: Finding, now: datetime) -> ExceptionUse:
    spec = exception.spec
    left = spec.ends - now
    return ExceptionUse(
        exception=exception.ref,
        expires=spec.expires,
        ticket=spec.ticket,
        action=finding.action,
        days_left=max(left.days, 0),
        ending=left <= timedelta(days=spec.warn_days_before),
    )


def apply_exceptions(
    decision: Decision,
    exceptions: Sequence[DistroPolicyException],
    target: ExceptionTarget,
    now: datetime,
    trust: ExceptionTrust | None = None,
) -> Decision:
    """`decision` with the findings that live, honoured exceptions cover excepted. When several cover a
    finding, the one that ends last is named (then by namespace/name): the workload's real deadline."""
    if not exceptions or not decision.findings:
        return decision
    trust = trust or ExceptionTrust()
    candidates = sorted(
        (
            e
            for e in exceptions
            if now < e.spec.ends and trust.honours(e) and covers_workload(e, target, trust)
        ),
        key=lambda e: (-e.spec.ends.timestamp(), e.ref),
    )
    if not candidates:
        return decision
    findings: list[Finding] = []
    changed = False
    for finding in decision.findings:
        if finding.exception is None:
            cover = next((e for e in candidates if covers_finding(e, finding)), None)
            if cover is not None:
                finding = dataclasses.replace(finding, action="audit", exception=use_of(cover, finding, now))
                changed = True
        findings.append(finding)
    if not changed:
        return decision
    return _reverdict(decision, findings)


def _reverdict(decision: Decision, findings: list[Finding]) -> Decision:
    by_container: dict[str, list[Finding]] = {}
    for finding in findings:
        by_container.setdefault(finding.container, []).append(finding)
    containers = tuple(
        ContainerVerdict(
            c.container,
            c.image,
            strictest([VERDICT_OF_ACTION[f.action] for f in by_container.get(c.container, ())]),
            c.digest,
        )
        for c in decision.containers
    )
    verdict = strictest([c.verdict for c in containers]) if findings else "allow"
    return Decision(verdict, containers, tuple(findings))


def exception_warning(finding: Finding) -> str | None:
    """The admission warning of an excepted finding that would have denied or warned: `allowed by exception
    team-a/migrate-off-alpine until 2027-03-31 (ticket OPS-123): <what is wrong>`; in the exception's last
    `warnDaysBefore` days it says that it is about to end. None for other findings."""
    use = finding.exception
    if use is None or use.action == "audit":
        return None
    ticket = f" (ticket {use.ticket})" if use.ticket else ""
    text = f"allowed by exception {use.exception} until {use.expires}{ticket}"
    if use.ending:
        when = "within a day" if use.days_left == 0 else f"in {use.days_left} days"
        text += f", which is about to end ({when}): then this is {_ACTED[use.action]}"
    return f"{text}: {finding.message}"


_ACTED = {"deny": "denied", "warn": "a warning"}


def exception_warnings(decision: Decision) -> list[str]:
    """The warnings of `decision`'s excepted findings, each once."""
    found = (exception_warning(f) for f in decision.findings if f.exception is not None)
    return list(dict.fromkeys(w for w in found if w is not None))
