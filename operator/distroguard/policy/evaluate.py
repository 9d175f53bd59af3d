"""`evaluate`: policies x containers -> Decision. Pure and deterministic: no I/O, no clock, no
globals.

Every (policy, container) pair a policy covers runs the policy's rules; every problem becomes a
finding. The verdict of a container is its strictest finding, the workload's is its strictest
container: several policies never weaken each other, and every finding is kept for reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from distroguard.model.decision import (
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
from distroguard.policy.rules import CHECKS
from distroguard.policy.selection import applies
from distroguard.policy.subject import Subject
from distroguard.policy.suggest import suggest

_UNRESOLVED_ACTION: dict[UnresolvedAction, Action] = {
    "allow": "audit",
    "warn": "warn",
    "deny": "deny",
}
_SEVERITY: dict[Level, Severity] = {"violation": "high", "advance": "medium", "unresolved": "low"}


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
        spec = policy.spec
        checks = [(rule, CHECKS[rule.kind]) for rule in spec.rules]  # once per policy, not per container
        for index, container in enumerate(containers):
            if not applies(spec, context, container):
                continue
            if container.facts is None:
                found = [_unresolved(policy, container)]
            else:
                subject = subjects[index]
                if subject is None:
                    subject = subjects[index] = Subject(container, container.facts, catalog, today)
                found = []
                for rule, check in checks:
                    for problem in check(rule, subject):  # usually none: nothing is built
                        found.append(_finding(policy, rule, problem, subject))
                if not found:
                    continue
            verdicts[index] = strictest([verdicts[index], *(VERDICT_OF_ACTION[f.action] for f in found)])
            findings.extend(found)
    return Decision(
        verdict=strictest(verdicts),
        containers=tuple(
            ContainerVerdict(
                container=c.container,
                image=c.image,
                verdict=verdict,
                digest=c.facts.digest if c.facts is not None else None,
            )
            for c, verdict in zip(containers, verdicts, strict=True)
        ),
        findings=tuple(findings),
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
    )


def _unresolved(policy: DistroPolicy, container: ContainerImage) -> Finding:
    action = _UNRESOLVED_ACTION[policy.spec.on_unresolved]
    why = f" ({container.unresolved})" if container.unresolved else ""
    treated = {"audit": "allows", "warn": "warns about", "deny": "denies"}[action]
    problem = Problem(
        reason="unresolved",
        text=f"its image could not be inspected{why}; policy {{ref}} {treated} images it cannot inspect "
        f"(onUnresolved: {policy.spec.on_unresolved})",
        level="unresolved",
    )
    return Finding(
        policy=policy.name,
        rule="onUnresolved",
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
