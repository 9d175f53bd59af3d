"""`allowDistros` / `denyDistros`: distributions by os-release ID, with optional version bounds."""

from __future__ import annotations

from distroguard.model.facts import OSRelease
from distroguard.model.policy import DistroSelector, Rule
from distroguard.model.version import at_least, at_most, same_release
from distroguard.policy.problem import Problem
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def selects(selector: DistroSelector, os: OSRelease) -> bool:
    """Whether the selector covers this OS. A version bound never covers an OS without a version."""
    if selector.id.lower() != os.id.lower():
        return False
    bounded = selector.versions or selector.min_version or selector.max_version
    if not bounded:
        return True
    version = os.version_id
    if not version:
        return False
    if selector.versions and not any(same_release(version, v) for v in selector.versions):
        return False
    if selector.min_version and not at_least(version, selector.min_version):
        return False
    return not (selector.max_version and not at_most(version, selector.max_version))


def check_deny(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    os = subject.os
    if os is None or rule.deny_distros is None:
        return NONE  # no OS at all is requireKnownOS's business
    for selector in rule.deny_distros:
        if selects(selector, os):
            bounds = f" (denied: {selector.describe()})" if selector.describe() != selector.id else ""
            return (
                Problem(
                    reason="distro-denied",
                    text=f"{subject.os_text()} is not allowed by policy {{ref}}{bounds}",
                    facts={"os": subject.os_text()},
                    fix="rebase",
                ),
            )
    return NONE


def check_allow(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    os = subject.os
    if os is None or rule.allow_distros is None:
        return NONE
    if any(selects(selector, os) for selector in rule.allow_distros):
        return NONE
    allowed = ", ".join(selector.describe() for selector in rule.allow_distros)
    return (
        Problem(
            reason="distro-not-allowed",
            text=f"{subject.os_text()} is not among the distributions allowed by policy {{ref}} ({allowed})",
            facts={"os": subject.os_text()},
            fix="rebase",
        ),
    )
