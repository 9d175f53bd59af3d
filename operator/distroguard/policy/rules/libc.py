"""`denyLibc` and `minGlibc`: the C library the image's programs link against."""

from __future__ import annotations

from distroguard.model.policy import Rule
from distroguard.model.version import at_least
from distroguard.policy.problem import Problem
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def _unknown(subject: Subject) -> tuple[Problem, ...]:
    return (
        Problem(
            reason="libc-unknown",
            text="its C library could not be determined, so policy {ref} cannot check it",
            level="unresolved",
            facts={"libc": "unknown"},
        ),
    )


def check_deny(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    denied = rule.deny_libc or ()
    family = subject.libc_family()
    if family == "unknown":
        return _unknown(subject)
    if family not in denied:
        return NONE
    what = "an image without a C library" if family == "none" else family
    return (
        Problem(
            reason="libc-denied",
            text=f"{what} is not allowed by policy {{ref}}",
            facts={"libc": subject.libc_text()},
            fix="glibc" if family == "musl" else None,
        ),
    )


def check_min_glibc(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    minimum = rule.min_glibc or ""
    family = subject.libc_family()
    if family == "none":
        return NONE  # a static binary needs no glibc
    if family == "unknown":
        return _unknown(subject)
    if family == "musl":
        return (
            Problem(
                reason="glibc-required",
                text=f"policy {{ref}} requires glibc {minimum} or newer, but the image uses "
                f"{subject.libc_text()}",
                facts={"libc": subject.libc_text()},
                fix="glibc",
            ),
        )
    version = subject.facts.libc.version
    if version is None:
        return (
            Problem(
                reason="libc-version-unknown",
                text="its glibc version could not be determined, so policy {ref} cannot check it",
                level="unresolved",
                facts={"libc": "glibc"},
            ),
        )
    if at_least(version, minimum):
        return NONE
    return (
        Problem(
            reason="glibc-too-old",
            text=f"glibc {version} is older than {minimum}, the minimum set by policy {{ref}}",
            facts={"libc": f"glibc {version}"},
            fix="glibc-version",
        ),
    )
