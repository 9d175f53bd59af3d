"""The text of a finding: the default sentence, or the rule's own `message` template."""

from __future__ import annotations

from distroguard.model.decision import UNRESOLVED_RULE
from distroguard.model.policy import Action, Rule
from distroguard.policy.problem import Problem


def render(
    rule: Rule | None,
    problem: Problem,
    *,
    container: str,
    image: str,
    facts: str,
    policy: str,
    action: Action,
    suggestion: str | None,
) -> str:
    """`container "app" uses python:3.7-alpine (Alpine Linux 3.9, musl 1.1.20): musl is not allowed
    by policy python-base-images/no-musl; use a glibc-based image such as
    python:3.7-slim-bookworm`"""
    rule_name = rule.name if rule is not None else UNRESOLVED_RULE
    # A finding of the policy as a whole (unresolved facts) names the policy alone. Replaced, not format():
    # the text carries what images and registries say (an os-release name, an error body), braces and all.
    text = problem.text.replace("{ref}", policy if rule is None else f"{policy}/{rule_name}")
    if rule is not None and rule.message is not None:
        # Placeholders were checked when the policy was loaded (model.policy.MESSAGE_FIELDS).
        return rule.message.format(
            container=container,
            image=image,
            facts=facts,
            problem=text,
            policy=policy,
            rule=rule_name,
            action=action,
            suggestion=suggestion or "",
        )
    message = f'container "{container}" uses {image} ({facts}): {text}'
    return f"{message}; {suggestion}" if suggestion else message
