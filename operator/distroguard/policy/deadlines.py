"""Judging a support deadline on a given day: passed, passed but within grace, near, or far."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from distroguard.model.lifecycle import PhaseEnd

Standing = Literal["over", "grace", "soon", "fine"]


@dataclass(frozen=True, slots=True)
class Judgement:
    standing: Standing
    end: date | None
    """The deadline, when a date is known (a phase may be known over without a date)."""
    days: int = 0
    """Days left (soon) or grace days left (grace)."""


FINE = Judgement("fine", None)
OVER_UNDATED = Judgement("over", None)


def judge(end: PhaseEnd | None, today: date, warn_days_before: int, grace_days: int) -> Judgement:
    """Support ends *on* `end`: that day is already past it (endoflife.date's reading)."""
    if end is None:
        return FINE
    if isinstance(end, bool):
        return OVER_UNDATED if end else FINE
    left = (end - today).days
    if left > warn_days_before:
        return FINE  # the hot path: a supported release, nothing allocated
    if left > 0:
        return Judgement("soon", end, left)
    grace_left = left + grace_days
    if grace_left > 0:
        return Judgement("grace", end, grace_left)
    return Judgement("over", end)


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"
