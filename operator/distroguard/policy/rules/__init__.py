"""One module per family of rule kinds; `CHECKS` maps each kind to its check, `bind` gives a rule's check
bound to the rule (compiled once per policy by the evaluation)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from distroguard.model.policy import Rule, RuleKind
from distroguard.policy.problem import Problem
from distroguard.policy.rules import distros, image, libc, lts, runtimes, support
from distroguard.policy.subject import Subject

Check = Callable[[Rule, Subject], tuple[Problem, ...]]
BoundCheck = Callable[[Subject], tuple[Problem, ...]]
"""A check with its rule bound: what the evaluation calls for each container."""

CHECKS: dict[RuleKind, Check] = {
    "allowDistros": distros.check_allow,
    "denyDistros": distros.check_deny,
    "denyLibc": libc.check_deny,
    "minGlibc": libc.check_min_glibc,
    "support": support.check,
    "requireLTS": lts.check,
    "runtimes": runtimes.check,
    "requireKnownOS": image.check_known_os,
    "maxImageSize": image.check_size,
}

BINDERS: dict[RuleKind, Callable[[Rule], BoundCheck]] = {
    "support": support.bind,
    "runtimes": runtimes.bind,
}
"""Kinds whose check has a version specialised for one rule: the rule's options read once, not for every
container. It answers exactly as the kind's entry in `CHECKS`."""


def bind(rule: Rule) -> BoundCheck:
    """`CHECKS[rule.kind]` with `rule` bound."""
    binder = BINDERS.get(rule.kind)
    return partial(CHECKS[rule.kind], rule) if binder is None else binder(rule)
