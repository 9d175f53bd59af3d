"""What a rule check reports, before the policy turns it into a `Finding` (action, message,
suggestion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["violation", "advance", "unresolved"]
"""violation: the rule failed (the rule's action); advance: a warning ahead of or after a deadline
(at most `warn`); unresolved: a fact or date the rule needs is unknown (the policy's
`onUnresolved`)."""

Fix = Literal["glibc", "rebase", "distro-eol", "runtime", "lts", "static", "glibc-version", "size"]
"""Which kind of suggestion helps: a glibc image, another distribution, a supported release..."""


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str
    """Stable machine-readable code: libc-denied, eol, eol-soon, not-lts, runtime-eol..."""
    text: str
    """The problem, naming the policy as {ref}: "musl is not allowed by policy {ref}"."""
    level: Level = "violation"
    facts: dict[str, str] = field(default_factory=dict)
    fix: Fix | None = None
    runtime: str | None = None
    """For runtime problems: the endoflife.date product (python, nodejs...), so a hint can bump
    it."""
