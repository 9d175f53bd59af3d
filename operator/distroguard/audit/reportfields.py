"""How each PolicyReport result is grouped and filtered: its `category`, `severity` and `scored` (pure).

Policy Reporter (and Kyverno's own reports) group results by `source`, then `category` (a result without
one lands in "Other"), and count and filter them by `severity` (critical, high, medium, low, info; a result
without one counts as "unknown"). As Kyverno does with a policy's severity annotation, a result's category
and severity belong to the rule that produced it, whatever the outcome: a rule's passes and failures share
them, so that "high" shows how the high-severity rules fare, not only their failures.

`scored` follows the wgpolicyk8s.io definition of the results: `warn` is "not met, and the policy is not
scored" (an advance warning, or a warn-action policy), every other result is scored.
"""

from __future__ import annotations

from collections.abc import Iterable

from distroguard.model.decision import FALSE_BASE_RULE, NO_PLATFORM_RULE, UNRESOLVED_RULE
from distroguard.model.policy import DistroPolicy, RuleKind
from distroguard.model.policyreport import ReportSeverity, Result

__all__ = [
    "EOL_DATA",
    "ReportFields",
    "fields_of",
    "rule_fields",
    "scored",
]

ReportFields = tuple[str, ReportSeverity]
"""(category, severity) of a rule's results."""

_BY_KIND: dict[RuleKind, ReportFields] = {
    "support": ("End of life", "high"),  # no more security updates
    "runtimes": ("Runtimes", "high"),  # the same for the language runtime (and its minimum versions)
    "denyLibc": ("C library", "medium"),
    "minGlibc": ("C library", "medium"),
    "allowDistros": ("Distribution", "medium"),
    "denyDistros": ("Distribution", "medium"),
    "requireKnownOS": ("Distribution", "medium"),
    "requireLTS": ("LTS releases", "low"),  # a short support window, not (yet) a missing update
    "maxImageSize": ("Image size", "low"),
}
_PSEUDO_RULES: dict[str, ReportFields] = {
    UNRESOLVED_RULE: ("Image inspection", "medium"),  # the image could not be inspected: nothing is known
    NO_PLATFORM_RULE: ("Platforms", "low"),
    FALSE_BASE_RULE: ("Base image", "medium"),  # the image's base-image annotation is false
}
EOL_DATA: ReportFields = ("EOL data", "medium")
"""The summary report's own result while the EOL data is older than allowed."""
_OTHER: ReportFields = ("Base images", "medium")
"""A rule no policy names any more (a result computed before the policy changed)."""


def rule_fields(policies: Iterable[DistroPolicy]) -> dict[tuple[str, str], ReportFields]:
    """(policy, rule) -> (category, severity) of every rule of `policies`."""
    return {(p.name, r.name): _BY_KIND[r.kind] for p in policies for r in p.spec.rules}


def fields_of(known: dict[tuple[str, str], ReportFields], policy: str, rule: str) -> ReportFields:
    """The fields of a policy's rule, or of one of the rules every policy has (onUnresolved, ...)."""
    return known.get((policy, rule)) or _PSEUDO_RULES.get(rule) or _OTHER


def scored(result: Result) -> bool:
    return result != "warn"
