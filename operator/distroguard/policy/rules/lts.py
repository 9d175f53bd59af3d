"""`requireLTS`: short-lived releases (non-LTS Ubuntu, Fedora) are flagged.

How each product counts is decided with the EOL data (`LifecycleMatch.lts` and its `lts_basis`):
products that mark LTS releases use the mark; the others are long-term or short-lived as a whole.
"""

from __future__ import annotations

from distroguard.model.policy import Rule
from distroguard.policy.problem import Problem
from distroguard.policy.rules.support import lifecycle_unknown
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def check(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    options = rule.require_lts
    found = subject.os_match()
    if options is None or found is None:
        return NONE
    if found.status == "rolling":
        if options.allow_rolling:
            return NONE
        text = f"{found.subject} is a rolling distribution; policy {{ref}} requires long-term releases"
        return (Problem("rolling", text, facts={"os": found.subject}, fix="lts"),)
    if found.cycle is None:
        return (lifecycle_unknown(found, subject.catalog.snapshot),)
    if found.lts is None:
        text = f"whether {found.subject} is a long-term release is unknown, so policy {{ref}} cannot check it"
        return (Problem("lts-unknown", text, level="unresolved", facts={"os": found.subject}),)
    if found.lts:
        return NONE
    text = (
        f"{found.subject} is a short-lived release ({found.lts_basis}); "
        "policy {ref} requires long-term releases"
    )
    return (Problem("not-lts", text, facts={"os": found.subject, "lts": "no"}, fix="lts"),)
