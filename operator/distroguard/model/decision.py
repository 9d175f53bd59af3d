"""What an evaluation decides: a verdict for the workload, one per container, and every finding behind them.

These are frozen standard-library dataclasses, not pydantic models: every admission review builds one
`ContainerVerdict` per container, and a pydantic model costs several microseconds to build, a large share of
the 10 µs per container evaluation budget. Nothing here is parsed from outside; `to_json()` (through a
pydantic TypeAdapter, which understands dataclasses) gives the JSON form for the CLI and reports.

`ContainerVerdict` and `Decision`, built on every evaluation, have their own `__init__`: a frozen dataclass's
generated one assigns each field through `object.__setattr__` (looked up anew for every field), twice the cost
of assigning the slots directly. They stay frozen: assigning a field afterwards raises FrozenInstanceError.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from distroguard.model.exception import ExceptionUse
from distroguard.model.policy import Action

Verdict = Literal["allow", "warn", "deny"]
Severity = Literal["high", "medium", "low", "info"]

# `audit` findings are recorded but never change a verdict.
VERDICT_OF_ACTION: dict[Action, Verdict] = {"deny": "deny", "warn": "warn", "audit": "allow"}

UNRESOLVED_RULE = "onUnresolved"
"""The `rule` of a finding about an image that could not be inspected at all: the policy's `onUnresolved`
decided it. (Rule names are lowercase, so no rule of a policy is called this.)"""


NO_PLATFORM_RULE = "onNoPlatform"
"""The `rule` of a finding about an image that offers none of the platforms that matter (the cluster's
nodes', or the one a pod is pinned to): the policy's `onNoPlatform` decided it."""


FALSE_BASE_RULE = "falseBaseClaim"
"""The `rule` of a finding about an image whose base-image annotation is false: the base it names does not
have the image's first layers. Every policy covering the image warns about it (never denies on its own: the
image's own facts are judged by the rules)."""


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
    platform: str | None = None
    """The platform of the facts behind it (os/arch[/variant]); None when there were none."""
    exception: ExceptionUse | None = None
    """The live DistroPolicyException that covers it: its `action` is then `audit` (it no longer acts), the
    action it would have had is the exception use's, and reports show it as `skip`."""


@dataclass(frozen=True, slots=True, init=False)
class ContainerVerdict:
    container: str
    image: str
    verdict: Verdict
    digest: str | None = None

    def __init__(self, container: str, image: str, verdict: Verdict, digest: str | None = None) -> None:
        _CV_CONTAINER(self, container)
        _CV_IMAGE(self, image)
        _CV_VERDICT(self, verdict)
        _CV_DIGEST(self, digest)


@dataclass(frozen=True, slots=True, init=False)
class Decision:
    """The outcome for one workload (or one image in CI): strictest action wins, every finding is kept."""

    verdict: Verdict
    containers: tuple[ContainerVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __init__(
        self,
        verdict: Verdict,
        containers: tuple[ContainerVerdict, ...] = (),
        findings: tuple[Finding, ...] = (),
    ) -> None:
        _DECISION_VERDICT(self, verdict)
        _DECISION_CONTAINERS(self, containers)
        _DECISION_FINDINGS(self, findings)

    @property
    def allowed(self) -> bool:
        return self.verdict != "deny"

    def messages(self, action: Action) -> list[str]:
        """Messages of the findings with `action`: denial reasons, warnings, audit notes."""
        return [f.message for f in self.findings if f.action == action]

    def warning_findings(self) -> list[Finding]:
        """The findings an admission answer shows as warnings: the `warn` findings, and each image admitted
        though it could not be inspected (`onUnresolved: allow`: an `audit` finding, so the verdict stays
        allow, but whoever applies the workload is told that nothing was checked, and why). A finding a
        DistroPolicyException covers is not among them: `policy.exceptions.exception_warnings` words it."""
        return [
            f
            for f in self.findings
            if f.action == "warn"
            or (f.action == "audit" and f.rule in _SHOWN_WHEN_ALLOWED and f.exception is None)
        ]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _decision_json().dump_python(self, mode="json")
        return data


_SHOWN_WHEN_ALLOWED = frozenset({UNRESOLVED_RULE, NO_PLATFORM_RULE})


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[object, Any], None], ...]:
    """The setters of `cls`'s slots: they assign a field without going through the class's `__setattr__`,
    which a frozen dataclass makes raise."""
    return tuple(cls.__dict__[name].__set__ for name in names)


_CV_CONTAINER, _CV_IMAGE, _CV_VERDICT, _CV_DIGEST = _slot_setters(
    ContainerVerdict, "container", "image", "verdict", "digest"
)
_DECISION_VERDICT, _DECISION_CONTAINERS, _DECISION_FINDINGS = _slot_setters(
    Decision, "verdict", "containers", "findings"
)


@functools.cache
def _decision_json() -> TypeAdapter[Decision]:
    """Built on first use, not at import: a command that shows decisions as text never needs it."""
    return TypeAdapter(Decision)
