"""`runtimes`: language runtimes must be supported releases, optionally at least some version."""

from __future__ import annotations

from collections.abc import Callable

from distroguard.model.facts import Runtime
from distroguard.model.lifecycle import LifecycleMatch
from distroguard.model.policy import Rule, RuntimeRule
from distroguard.model.version import at_least
from distroguard.policy.deadlines import FINE, Judgement, days_text, judge
from distroguard.policy.problem import Problem
from distroguard.policy.rules.support import unknown_note
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def check(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    return bind(rule)(subject)


def bind(rule: Rule) -> Callable[[Subject], tuple[Problem, ...]]:
    """The check of one `runtimes` rule, its options read once."""
    options = rule.runtimes
    if options is None:
        return _nothing
    names = options.names
    warn = options.warn_days_before
    # Without minVersions, a tracked runtime whose end of life is further away than warnDaysBefore (or not
    # announced) passes: what `_check_one` says of it, answered without a call.
    plain = options.require_supported and not options.min_versions

    def check_runtimes(subject: Subject) -> tuple[Problem, ...]:
        problems: tuple[Problem, ...] = NONE
        for runtime in subject.facts.runtimes:
            found = subject.runtime_match(runtime)
            if names and runtime.name not in names and found.product not in names:
                continue
            cycle = found.cycle
            if plain and cycle is not None:
                end = cycle.eol
                if end is False or (not isinstance(end, bool) and (end - subject.today).days > warn):
                    continue  # the hot path
            problems += _check_one(options, runtime, found, subject)
        return problems

    return check_runtimes


def _nothing(subject: Subject) -> tuple[Problem, ...]:
    return NONE


def _check_one(
    options: RuntimeRule, runtime: Runtime, found: LifecycleMatch, subject: Subject
) -> tuple[Problem, ...]:
    minimum = _minimum(options, runtime, found) if options.min_versions else None
    too_old = minimum is not None and not at_least(runtime.version, minimum)
    cycle = found.cycle
    verdict: Judgement = FINE
    if options.require_supported and cycle is not None:
        verdict = judge(cycle.eol, subject.today, options.warn_days_before, options.grace_days)
    untracked = found.status == "unknown-product" and not options.names
    unknown = options.require_supported and cycle is None and not untracked
    if not too_old and not unknown and verdict is FINE:
        return NONE  # the hot path: nothing below allocates
    name = f"{found.product_label or runtime.name} {runtime.version}"
    facts = {"runtime": name}
    problems: list[Problem] = []
    if too_old:
        text = f"{name} is older than {minimum}, the minimum set by policy {{ref}}"
        problems.append(Problem("runtime-too-old", text, facts=facts, fix="runtime", runtime=found.product))
    if unknown:
        note = unknown_note(found, subject.catalog.snapshot)
        text = f"the support status of {name} is unknown ({note}), so policy {{ref}} cannot check it"
        facts = {**facts, "eolData": subject.catalog.snapshot.isoformat()}
        problems.append(Problem("runtime-lifecycle-unknown", text, level="unresolved", facts=facts))
    if cycle is not None and verdict is not FINE:
        problems.append(_deadline_problem(options, name, found, verdict, {**facts, "cycle": cycle.cycle}))
    return tuple(problems)


def _minimum(options: RuntimeRule, runtime: Runtime, found: LifecycleMatch) -> str | None:
    wanted = options.min_versions
    return wanted.get(runtime.name) or (wanted.get(found.product) if found.product else None)


def _deadline_problem(
    options: RuntimeRule,
    name: str,
    found: LifecycleMatch,
    verdict: Judgement,
    facts: dict[str, str],
) -> Problem:
    facts["eol"] = str(verdict.end) if verdict.end else "ended (date unknown)"
    since = f" (since {verdict.end})" if verdict.end else ""
    if verdict.standing == "over":
        text = f"{name} is past its end of life{since}, which policy {{ref}} does not allow"
        return Problem("runtime-eol", text, facts=facts, fix="runtime", runtime=found.product)
    if verdict.standing == "grace":
        text = (
            f"{name} is past its end of life{since}; "
            f"policy {{ref}} allows it for {days_text(verdict.days)} more"
        )
        reason = "runtime-eol-grace"
    else:
        text = (
            f"{name} reaches its end of life on {verdict.end}, in {days_text(verdict.days)} "
            f"(policy {{ref}} warns {days_text(options.warn_days_before)} ahead)"
        )
        reason = "runtime-eol-soon"
    return Problem(reason, text, level="advance", facts=facts, fix="runtime", runtime=found.product)
