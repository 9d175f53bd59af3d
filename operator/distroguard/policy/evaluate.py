"""`evaluate`: policies x containers -> Decision. Pure and deterministic: no I/O, no clock, no
global state that could change a result.

Every (policy, container) pair a policy covers runs the policy's rules; every problem becomes a
finding. The verdict of a container is its strictest finding, the workload's is its strictest
container: several policies never weaken each other, and every finding is kept for reports.

What depends on a policy alone (which containers it covers, each rule's check with its options read) is
worked out once per policy object and kept in a small memo: a `DistroPolicy` is immutable, and a changed
policy is a new object. The memo is an optimisation only: it holds no facts, dates or results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distroguard.model.decision import (
    FALSE_BASE_RULE,
    NO_PLATFORM_RULE,
    UNRESOLVED_RULE,
    VERDICT_OF_ACTION,
    ContainerVerdict,
    Decision,
    Finding,
    Severity,
    Verdict,
    strictest,
)
from distroguard.model.lifecycle import LifecycleLookup
from distroguard.model.policy import Action, DistroPolicy, Rule, UnresolvedAction
from distroguard.policy.context import ContainerImage, EvaluationContext
from distroguard.policy.messages import render
from distroguard.policy.problem import Level, Problem
from distroguard.policy.rules import BoundCheck, bind
from distroguard.policy.selection import Covers, coverage
from distroguard.policy.subject import Subject
from distroguard.policy.suggest import suggest

_UNRESOLVED_ACTION: dict[UnresolvedAction, Action] = {
    "allow": "audit",
    "warn": "warn",
    "deny": "deny",
}
_SEVERITY: dict[Level, Severity] = {"violation": "high", "advance": "medium", "unresolved": "low"}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What evaluating one policy needs that depends on the policy alone."""

    policy: DistroPolicy
    covers: Covers | None
    """Whether the policy covers a container; None: it covers every container."""
    checks: tuple[tuple[Rule, BoundCheck], ...]


_PLANS: dict[int, _Plan] = {}
_PLANS_LIMIT = 512
"""More policies than a cluster has: a full memo is emptied, not evicted one by one."""


def _plan(policy: DistroPolicy) -> _Plan:
    # Keyed by identity: hashing a policy's fields would cost more than the evaluation. The plan holds its
    # policy, so the id cannot be reused while the entry lives, and the `is` check makes sure of it.
    plan = _PLANS.get(id(policy))
    if plan is None or plan.policy is not policy:
        if len(_PLANS) >= _PLANS_LIMIT:
            _PLANS.clear()
        spec = policy.spec
        plan = _Plan(policy, coverage(spec), tuple((rule, bind(rule)) for rule in spec.rules))
        _PLANS[id(policy)] = plan
    return plan


def evaluate(
    containers: Sequence[ContainerImage],
    policies: Sequence[DistroPolicy],
    context: EvaluationContext,
    catalog: LifecycleLookup,
) -> Decision:
    today = context.today
    subjects: list[Subject | None] = [None] * len(containers)
    findings: list[Finding] = []
    verdicts: list[Verdict] = ["allow"] * len(containers)
    for policy in policies:
        plan = _plan(policy)
        covers = plan.covers
        checks = plan.checks
        for index, container in enumerate(containers):
            if covers is not None and not covers(context, container):
                continue
            facts = container.facts
            if container.no_platform:
                found = [_no_platform(policy, container)]
                if facts is not None:
                    subject = subjects[index]
                    if subject is None:
                        subject = subjects[index] = Subject(container, facts, catalog, today)
                    for rule, check in checks:
                        found.extend(_finding(policy, rule, problem, subject) for problem in check(subject))
            elif facts is None:
                found = [_unresolved(policy, container)]
            else:
                subject = subjects[index]
                if subject is None:
                    subject = subjects[index] = Subject(container, facts, catalog, today)
                found = []
                for rule, check in checks:
                    problems = check(subject)
                    if problems:  # usually not: nothing is built
                        found.extend(_finding(policy, rule, problem, subject) for problem in problems)
                if facts.base is not None and facts.base.verified is False:
                    found.append(_false_base(policy, subject))
                if not found:
                    continue
            verdicts[index] = strictest([verdicts[index], *(VERDICT_OF_ACTION[f.action] for f in found)])
            findings.extend(found)
    return Decision(
        strictest(verdicts) if findings else "allow",
        tuple(
            [
                # Indexed, not zip(..., strict=True): a keyword argument sends zip down a slow path.
                ContainerVerdict(
                    c.container, c.image, verdicts[i], None if c.facts is None else c.facts.digest
                )
                for i, c in enumerate(containers)
            ]
        ),
        tuple(findings),
    )


def _action(policy: DistroPolicy, rule: Rule, level: Level) -> Action:
    if level == "unresolved":
        return _UNRESOLVED_ACTION[policy.spec.on_unresolved]
    action = rule.action or policy.spec.action
    # An advance warning (near EOL, in grace, in extended support) never blocks: at most it warns.
    return "warn" if level == "advance" and action == "deny" else action


def _finding(policy: DistroPolicy, rule: Rule, problem: Problem, subject: Subject) -> Finding:
    action = _action(policy, rule, problem.level)
    suggestion = suggest(problem, subject)
    facts_text = subject.facts_text()
    return Finding(
        policy=policy.name,
        rule=rule.name,
        action=action,
        severity=_SEVERITY[problem.level],
        reason=problem.reason,
        message=render(
            rule,
            problem,
            container=subject.container,
            image=subject.image,
            facts=facts_text,
            policy=policy.name,
            action=action,
            suggestion=suggestion,
        ),
        container=subject.container,
        image=subject.image,
        facts=problem.facts or {"summary": facts_text},
        suggestion=suggestion,
        platform=subject.facts.platform,
    )


def _false_base(policy: DistroPolicy, subject: Subject) -> Finding:
    """The finding of an image that claims a base it is not built on (`FALSE_BASE_RULE`): a warning."""
    base = subject.facts.base
    claimed = base.reference if base is not None else "?"
    text = (
        f"it claims to be built on {claimed} (annotation org.opencontainers.image.base.name), but that "
        "image's layers are not its first ones; policy {ref} warns about false base claims"
    )
    problem = Problem(reason="false-base-claim", text=text, level="advance")
    facts_text = subject.facts_text()
    return Finding(
        policy=policy.name,
        rule=FALSE_BASE_RULE,
        action="warn",
        severity="medium",
        reason="false-base-claim",
        message=render(
            None,
            problem,
            container=subject.container,
            image=subject.image,
            facts=facts_text,
            policy=policy.name,
            action="warn",
            suggestion=None,
        ),
        container=subject.container,
        image=subject.image,
        facts={"claimedBase": claimed, "summary": facts_text},
        platform=subject.facts.platform,
    )


def _no_platform(policy: DistroPolicy, container: ContainerImage) -> Finding:
    """The finding of a covered container whose image offers none of the platforms that matter:
    `onNoPlatform` decides, as `onUnresolved` does for an image that could not be inspected."""
    action = _UNRESOLVED_ACTION[policy.spec.on_no_platform]
    treated = {"audit": "allows", "warn": "warns about", "deny": "denies"}[action]
    text = (
        f"{container.no_platform}; policy {{ref}} {treated} images that offer none of them "
        f"(onNoPlatform: {policy.spec.on_no_platform})"
    )
    problem = Problem(reason="no-platform", text=text, level="unresolved")
    facts = container.facts
    return Finding(
        policy=policy.name,
        rule=NO_PLATFORM_RULE,
        action=action,
        severity="medium",
        reason="no-platform",
        message=render(
            None,
            problem,
            container=container.container,
            image=container.image,
            facts="no platform of the cluster's" if facts is None else facts.platform,
            policy=policy.name,
            action=action,
            suggestion=None,
        ),
        container=container.container,
        image=container.image,
        facts={"platforms": container.no_platform},
        platform=None if facts is None else facts.platform,
    )


def _unresolved(policy: DistroPolicy, container: ContainerImage) -> Finding:
    """The finding of a covered container whose image could not be inspected: `onUnresolved` decides.

    allow: an `audit` finding, so the verdict stays allow; its message is still shown as an admission
    warning (`Decision.warning_findings`), since none of the policy's rules could run."""
    action = _UNRESOLVED_ACTION[policy.spec.on_unresolved]
    why = container.unresolved or "reason unknown"
    treated = {"audit": "allows", "warn": "warns about", "deny": "denies"}[action]
    # Its reason in the middle: `admission.decide` shortens that part when a warning must be shorter.
    text = (
        f"its image could not be inspected ({why}); policy {{ref}} {treated} images it cannot inspect "
        f"(onUnresolved: {policy.spec.on_unresolved})"
    )
    problem = Problem(reason="unresolved", text=text, level="unresolved")
    return Finding(
        policy=policy.name,
        rule=UNRESOLVED_RULE,
        action=action,
        severity="low",
        reason="unresolved",
        message=render(
            None,
            problem,
            container=container.container,
            image=container.image,
            facts="facts unknown",
            policy=policy.name,
            action=action,
            suggestion=None,
        ),
        container=container.container,
        image=container.image,
        facts={"unresolved": container.unresolved or "unknown"},
    )
