"""CI reports of `check` and `audit`: SARIF 2.1.0, JUnit XML and GitHub workflow commands.

Pure: judged images in, text out. Each format has its own module; this one holds what they share:

- `Checked`, one judged image as a report shows it (an image of `check`, on one platform; a container of
  a workload for `audit`), with where it is written when a Dockerfile names it;
- `RuleInfo`, what a report says about one policy rule (its id is `POLICY/RULE`, as findings name it).

Each module is imported by `render` only when its format is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from distroguard.model import Finding, Verdict
from distroguard.model.decision import FALSE_BASE_RULE, NO_PLATFORM_RULE, UNRESOLVED_RULE
from distroguard.model.policy import RULE_KINDS, Action, DistroPolicy, Rule

ReportFormat = Literal["sarif", "junit", "github"]
FORMATS: tuple[ReportFormat, ...] = ("sarif", "junit", "github")

DOCS_URL = "https://distroguard.dev/docs/"
"""The project's documentation (the chart's `home` plus docs/): rules link to the policy reference."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a Dockerfile names the image: its path as given (forward slashes) and the FROM line."""

    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Checked:
    """One judged image as a report shows it.

    Invariant: `error` is set exactly when the image could not be judged (`verdict` is then None and there
    are no findings)."""

    group: str
    """What it belongs to: the image (check) or the workload (audit), e.g. `Deployment shop/web`."""
    subject: str
    """What was judged, e.g. `python:3.12-alpine (linux/amd64)` or `container app (python:3.12-alpine)`."""
    image: str
    verdict: Verdict | None
    findings: tuple[Finding, ...] = ()
    covered: frozenset[str] = field(default_factory=frozenset)
    """Names of the policies that cover it: every rule of the others does not apply."""
    location: Location | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A policy rule as reports describe it."""

    id: str
    """`POLICY/RULE`, as findings name it."""
    policy: str
    rule: str
    action: Action | None
    """What it does when it fails (None for the policy-wide decisions: onUnresolved...)."""
    summary: str
    """One line: what the rule checks, with its settings."""
    description: str
    """What the rule kind means (the policy reference's words)."""
    help_uri: str


def rule_id(policy: str, rule: str) -> str:
    return f"{policy}/{rule}"


_POLICY_WIDE: dict[str, tuple[str, str]] = {
    UNRESOLVED_RULE: (
        "the image could not be inspected, or a fact or date the rules need is unknown",
        "The policy's onUnresolved decides what happens when an image cannot be inspected in time or at "
        "all, or a rule needs a fact or an end-of-life date nobody knows.",
    ),
    NO_PLATFORM_RULE: (
        "the image offers none of the platforms that matter",
        "The policy's onNoPlatform decides what happens when an image offers none of the platforms its "
        "workload runs on.",
    ),
    FALSE_BASE_RULE: (
        "the image's base-image annotation is false",
        "The base image the org.opencontainers.image.base.name annotation names does not have the image's "
        "first layers: every policy covering the image warns about it.",
    ),
}


def _kind_description(rule: Rule) -> str:
    attribute = next(attr for attr, wire in RULE_KINDS if wire == rule.kind)
    info = Rule.model_fields[attribute]
    if info.description:
        return " ".join(info.description.split())
    held = getattr(rule, attribute)
    doc = type(held).__doc__ or ""
    return " ".join(doc.split())


def _settings(rule: Rule) -> str:
    attribute = next(attr for attr, wire in RULE_KINDS if wire == rule.kind)
    data = rule.model_dump(mode="json", by_alias=True, include={attribute}, exclude_defaults=True)
    value = data.get(rule.kind, data.get(attribute))
    return json.dumps(value, separators=(", ", ": "))


def rules_of(policies: Iterable[DistroPolicy]) -> list[RuleInfo]:
    """One `RuleInfo` per rule of each policy, in the policies' order."""
    infos = []
    for policy in policies:
        for rule in policy.spec.rules:
            action = rule.action or policy.spec.action
            sentence = _kind_description(rule)
            infos.append(
                RuleInfo(
                    id=rule_id(policy.name, rule.name),
                    policy=policy.name,
                    rule=rule.name,
                    action=action,
                    summary=f"{rule.kind} {_settings(rule)} ({action})",
                    description=f"{sentence[:1].upper()}{sentence[1:]}".rstrip(".") + ".",
                    help_uri=f"{DOCS_URL}policy-reference#{rule.kind.lower()}",
                )
            )
    return infos


def policy_wide_rule(policy: str, rule: str) -> RuleInfo:
    """The `RuleInfo` of a finding no rule of the policy made (onUnresolved, onNoPlatform...)."""
    summary, description = _POLICY_WIDE.get(rule, (rule, rule))
    return RuleInfo(
        id=rule_id(policy, rule),
        policy=policy,
        rule=rule,
        action=None,
        summary=summary,
        description=description,
        help_uri=f"{DOCS_URL}policy-reference#distropolicyspec",
    )


def all_rules(items: Sequence[Checked], policies: Sequence[DistroPolicy]) -> list[RuleInfo]:
    """The policies' rules, then those of findings no rule made, each once."""
    rules = rules_of(policies)
    known = {info.id for info in rules}
    for item in items:
        for finding in item.findings:
            found = rule_id(finding.policy, finding.rule)
            if found not in known:
                known.add(found)
                rules.append(policy_wide_rule(finding.policy, finding.rule))
    return rules


def render(output: str, items: Sequence[Checked], policies: Sequence[DistroPolicy]) -> str:
    """The report in `output`'s format (one of `FORMATS`), ending with a newline."""
    if output not in FORMATS:
        raise ValueError(f"no report format {output!r}: one of {', '.join(FORMATS)}")
    rules = all_rules(items, policies)
    if output == "sarif":
        from distroguard.cli.reports.sarif import sarif_log

        return json.dumps(sarif_log(items, rules), indent=2) + "\n"
    if output == "junit":
        from distroguard.cli.reports.junit import junit_xml

        return junit_xml(items, rules)
    from distroguard.cli.reports.github import workflow_commands

    return workflow_commands(items)
