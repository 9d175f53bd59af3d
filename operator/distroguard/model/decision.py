"""What an evaluation decides: a verdict for the workload, one per container, and every finding behind them.

These are frozen standard-library dataclasses, not pydantic models: every admission review builds one
`ContainerVerdict` per container, and a pydantic model costs several microseconds to build, a large share of
the 10 µs per container evaluation budget. Nothing here is parsed from outside; `to_json()` (through a
pydantic TypeAdapter, which understands dataclasses) gives the JSON form for the CLI and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from distroguard.model.policy import Action

Verdict = Literal["allow", "warn", "deny"]
Severity = Literal["high", "medium", "low", "info"]

# `audit` findings are recorded but never change a verdict.
VERDICT_OF_ACTION: dict[Action, Verdict] = {"deny": "deny", "warn": "warn", "audit": "allow"}


def strictest(verdicts: list[Verdict]) -> Verdict:
    """`deny` over `warn` over `allow`: several policies never weaken each other."""
    if "deny" in verdicts:
        return "deny"
    return "warn" if "warn" in verdicts else "allow"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that did not pass for one container, with what decided it and what to do about it."""

    policy: str
    rule: str
    action: Action
    """What the policy does about it: deny, warn or audit."""
    severity: Severity
    """How bad it is: high (a violation), medium (an advance warning), low (cannot be checked), info."""
    reason: str
    """Stable machine-readable code: libc-denied, eol, eol-soon, not-lts, runtime-eol, unresolved..."""
    message: str
    """What is wrong and what to do, for a person."""
    container: str
    image: str
    facts: dict[str, str] = field(default_factory=dict)
    """The facts that decided it, e.g. {"libc": "musl 1.2.4"}."""
    suggestion: str | None = None
    """A replacement image or next step, also at the end of `message`."""


@dataclass(frozen=True, slots=True)
class ContainerVerdict:
    container: str
    image: str
    verdict: Verdict
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one workload (or one image in CI): strictest action wins, every finding is kept."""

    verdict: Verdict
    containers: tuple[ContainerVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict != "deny"

    def messages(self, action: Action) -> list[str]:
        """Messages of the findings with `action`: denial reasons, admission warnings, audit notes."""
        return [f.message for f in self.findings if f.action == action]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _DECISION_JSON.dump_python(self, mode="json")
        return data


_DECISION_JSON: TypeAdapter[Decision] = TypeAdapter(Decision)
