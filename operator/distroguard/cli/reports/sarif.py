"""SARIF 2.1.0 (OASIS): what GitHub code scanning and other CI dashboards read.

One run of one tool (`distroguard`), one reporting descriptor per policy rule (`POLICY/RULE`), one result
per finding. A finding's level follows its action: deny is `error`, warn is `warning`, audit (an allowed
image's finding, or one a DistroPolicyException covers) is `note`; an excepted finding also carries an
external suppression naming the exception, so code scanning shows it as dismissed. A result is located
at the Dockerfile's FROM line when the image came from `--dockerfile`, and always names the image as a
logical location. Images that could not be judged are tool execution notifications (errors), and the
invocation is then not successful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distroguard import __version__
from distroguard.cli.reports import Checked, RuleInfo, rule_id
from distroguard.model import Finding

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://distroguard.dev"

_LEVEL = {"deny": "error", "warn": "warning", "audit": "note"}


def _location(item: Checked) -> dict[str, Any]:
    logical = {"name": item.image, "fullyQualifiedName": f"{item.group}: {item.subject}", "kind": "resource"}
    location: dict[str, Any] = {"logicalLocations": [logical]}
    if item.location is not None:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": item.location.path},
            "region": {"startLine": item.location.line},
        }
    return location


def _descriptor(rule: RuleInfo) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "shortDescription": {"text": f"{rule.id}: {rule.summary}"},
        "fullDescription": {"text": rule.description},
        "helpUri": rule.help_uri,
        # Shown on a code scanning alert's page: what the rule checks, without leaving it.
        "help": {"text": f"{rule.id}: {rule.summary}. {rule.description}"},
        "properties": {"policy": rule.policy, "rule": rule.rule, "tags": ["distroguard", rule.policy]},
    }
    if rule.action is not None:
        descriptor["defaultConfiguration"] = {"level": _LEVEL[rule.action]}
    return descriptor


def _result(item: Checked, finding: Finding, index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "image": item.image,
        "subject": item.subject,
        "action": finding.action,
        "severity": finding.severity,
        "reason": finding.reason,
        "facts": dict(finding.facts),
    }
    if finding.platform:
        properties["platform"] = finding.platform
    if finding.suggestion:
        properties["suggestion"] = finding.suggestion
    result: dict[str, Any] = {
        "ruleId": rule_id(finding.policy, finding.rule),
        "ruleIndex": index,
        "level": _LEVEL[finding.action],
        "message": {"text": finding.message},
        "locations": [_location(item)],
        "properties": properties,
    }
    used = finding.exception
    if used is not None:
        ticket = f", ticket {used.ticket}" if used.ticket else ""
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"DistroPolicyException {used.exception} until {used.expires}{ticket}",
            }
        ]
    return result


def sarif_log(items: Sequence[Checked], rules: Sequence[RuleInfo]) -> dict[str, Any]:
    """The SARIF log of `items`; `rules` holds every rule their findings name."""
    index = {rule.id: position for position, rule in enumerate(rules)}
    results = [
        _result(item, finding, index[rule_id(finding.policy, finding.rule)])
        for item in items
        for finding in item.findings
    ]
    failures = [
        {
            "level": "error",
            "message": {"text": f"{item.subject}: {item.error}"},
            "locations": [_location(item)],
        }
        for item in items
        if item.error is not None
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not failures}
    if failures:
        invocation["toolExecutionNotifications"] = failures
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "distroguard",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_descriptor(rule) for rule in rules],
                    }
                },
                "invocations": [invocation],
                "columnKind": "utf16CodeUnits",
                "results": results,
            }
        ],
    }
