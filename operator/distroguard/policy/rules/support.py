"""`support`: the distribution release must be within security support (optionally active
support)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from distroguard.model.lifecycle import LifecycleMatch, ReleaseCycle, end_date, phase_over
from distroguard.model.policy import Rule, SupportRule
from distroguard.policy.deadlines import FINE, days_text, judge
from distroguard.policy.problem import Problem
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def lifecycle_unknown(found: LifecycleMatch, data: date) -> Problem:
    """`data`: the EOL data's day, said whenever the product is one endoflife.date tracks, so that a reader
    can tell a release newer than the data from stale data."""
    return Problem(
        reason="lifecycle-unknown",
        text=f"the support status of {found.subject} is unknown ({unknown_note(found, data)}), "
        "so policy {ref} cannot check it",
        level="unresolved",
        facts={"os": found.subject, "lifecycle": found.status, "eolData": data.isoformat()},
    )


def unknown_note(found: LifecycleMatch, data: date) -> str:
    """Why a lifecycle is unknown, with the EOL data's day when newer data could know it."""
    if found.product is None:
        return found.note  # not a product endoflife.date tracks: no data of any day would know it
    return f"{found.note}; EOL data of {data.isoformat()}"


def check(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    return bind(rule)(subject)


def bind(rule: Rule) -> Callable[[Subject], tuple[Problem, ...]]:
    """The check of one `support` rule, its options read once."""
    options = rule.support
    if options is None:
        return _nothing
    warn = options.warn_days_before
    # Without requireActive and extended support, a release whose end of security support is further away
    # than warnDaysBefore (or not announced) passes: what `judge` says of it, answered without a call.
    plain = not options.require_active and not options.count_extended_support

    def check_support(subject: Subject) -> tuple[Problem, ...]:
        found = subject.os_match()
        if found is None or found.status == "rolling":
            return NONE  # no OS: requireKnownOS's business; rolling: never EOL by date
        cycle = found.cycle
        if cycle is None:
            return (lifecycle_unknown(found, subject.catalog.snapshot),)
        if plain:
            end = cycle.eol
            if end is False or (not isinstance(end, bool) and (end - subject.today).days > warn):
                return NONE  # the hot path
        problem = _judge_cycle(options, found.subject, cycle, subject.today)
        return NONE if problem is None else (problem,)

    return check_support


def _nothing(subject: Subject) -> tuple[Problem, ...]:
    return NONE


def _judge_cycle(options: SupportRule, name: str, cycle: ReleaseCycle, today: date) -> Problem | None:
    """The most pressing problem, in order: past support, in grace, active support required,
    support ending soon, only extended support left, regular support ending soon."""
    extended = options.count_extended_support and cycle.eoes is not None
    warn = options.warn_days_before
    verdict = judge(cycle.eoes if extended else cycle.eol, today, warn, options.grace_days)
    active_over = options.require_active and cycle.eoas is not None and phase_over(cycle.eoas, today)
    regular = judge(cycle.eol, today, warn, 0) if extended else FINE
    if verdict is FINE and regular is FINE and not active_over:
        return None  # the hot path: a supported release, no text built
    phase = "extended support" if extended else "security support"
    facts = {"os": name, "cycle": cycle.cycle, "eol": _date_text(cycle.eol)}
    if cycle.eoes is not None:
        facts["extended"] = _date_text(cycle.eoes)
    since = f" (since {verdict.end})" if verdict.end else ""
    ahead = f"(policy {{ref}} warns {days_text(warn)} ahead)"
    if verdict.standing == "over":
        text = f"{name} is past the end of {phase}{since}, which policy {{ref}} does not allow"
        return Problem("eol", text, facts=facts, fix="distro-eol")
    if verdict.standing == "grace":
        text = (
            f"{name} is past the end of {phase}{since}; policy {{ref}} allows it for "
            f"{days_text(verdict.days)} more"
        )
        return Problem("eol-grace", text, level="advance", facts=facts, fix="distro-eol")
    if active_over:
        text = (
            f"{name} is past active support{_ended(cycle.eoas)} and gets security fixes only; "
            "policy {ref} requires active support"
        )
        return Problem("active-support-ended", text, facts=facts, fix="distro-eol")
    if verdict.standing == "soon":
        left = days_text(verdict.days)
        text = f"{name} reaches the end of {phase} on {verdict.end}, in {left} {ahead}"
        return Problem("eol-soon", text, level="advance", facts=facts, fix="distro-eol")
    if regular.standing in ("over", "grace"):
        text = (
            f"{name} is past regular security support{_ended(cycle.eol)} and only within extended "
            f"support until {_date_text(cycle.eoes)}; policy {{ref}} warns"
        )
        return Problem("extended-support", text, level="advance", facts=facts, fix="distro-eol")
    # Leaving regular security support deserves the same notice, though extended support follows.
    text = (
        f"{name} leaves regular security support on {regular.end}, in {days_text(regular.days)}, "
        f"then has extended support only, until {_date_text(cycle.eoes)} {ahead}"
    )
    return Problem("eol-soon", text, level="advance", facts=facts, fix="distro-eol")


def _ended(end: object) -> str:
    day = end_date(end) if isinstance(end, date | bool) else None
    return f" (ended {day})" if day else ""


def _date_text(end: object) -> str:
    if end is True:
        return "ended (date unknown)"
    if end is False or end is None:
        return "none announced"
    return str(end)
