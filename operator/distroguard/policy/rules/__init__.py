"""One module per family of rule kinds; `CHECKS` maps each kind to its check."""

from __future__ import annotations

from collections.abc import Callable

from distroguard.model.policy import Rule, RuleKind
from distroguard.policy.problem import Problem
from distroguard.policy.rules import distros, image, libc, lts, runtimes, support
from distroguard.policy.subject import Subject

Check = Callable[[Rule, Subject], tuple[Problem, ...]]

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
