"""DistroPolicyException: a time-bound, namespaced permission for some workloads to fail some rules.

`apiVersion: distroguard.dev/v1alpha1`, `kind: DistroPolicyException`, namespaced. Like a Kyverno
PolicyException, it names the policies (and optionally their rules) it excepts from and the workloads it
covers; unlike one, it must end (`expires`) and say why (`reason`). The same YAML is a Kubernetes object and
a file given to `distroguard check --exception`.

What the schema cannot say is checked when an exception is loaded, against the clock at that moment
(`ExceptionLimits.problems`): an `expires` further ahead than the cluster allows makes the exception
invalid (logged and ignored), and an exception past its end is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from distroguard.model.policy import Action

_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DATE = r"\d{4}-\d{2}-\d{2}"
EXPIRES_PATTERN = rf"^{_DATE}([Tt ]\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?([Zz]|[+-]\d{{2}}:\d{{2}}))?$"
"""A date (`2027-03-31`), or a timestamp with its zone (`2027-03-31T18:00:00Z`, `...+02:00`)."""
_EXPIRES = re.compile(EXPIRES_PATTERN)

DEFAULT_WARN_DAYS = 14
DEFAULT_MAX_DAYS = 365


class _Spec(BaseModel):
    # Built on first validation, not at import: `check` without --exception never reads one.
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class PolicyRef(_Spec):
    """A policy the exception excepts from, and which of its rules (Kyverno's `policyName`/`ruleNames`)."""

    policy_name: str = Field(
        description="a DistroPolicy's name",
        json_schema_extra={"pattern": _NAME_PATTERN, "maxLength": 63},
    )
    rule_names: tuple[str, ...] = Field(
        default=(),
        description="rules of that policy; empty: all of its findings (its rules, onUnresolved and "
        "onNoPlatform)",
        json_schema_extra={"items": {"type": "string", "pattern": _NAME_PATTERN, "maxLength": 63}},
    )

    def covers(self, policy: str, rule: str) -> bool:
        return policy == self.policy_name and (not self.rule_names or rule in self.rule_names)


class ExceptionMatch(_Spec):
    """The workloads an exception covers: every criterion that is set must hold (AND), any entry of a list
    may match (OR). Empty: every workload of its namespace."""

    kinds: tuple[str, ...] = Field(
        default=(), description="workload kinds (Deployment, StatefulSet, Pod...); empty: any kind"
    )
    names: tuple[str, ...] = Field(
        default=(), description="workload names or globs (`api-*`); empty: any name"
    )
    images: tuple[str, ...] = Field(
        default=(),
        description="image reference globs on the normalised reference (`docker.io/library/python:*-alpine`) "
        "or as written (`python:*-alpine`); only the findings of these images are excepted; empty: any image",
    )
    namespaces: tuple[str, ...] = Field(
        default=(),
        description="namespace names or globs; honoured only for an exception in the admin namespace "
        "(`--exception-admin-namespace`), whose exceptions hold cluster-wide: elsewhere an exception covers "
        "its own namespace alone; empty: any namespace it may cover",
    )


class DistroPolicyExceptionSpec(_Spec):
    policies: tuple[PolicyRef, ...] = Field(
        min_length=1, description="the policies, and optionally their rules, excepted from"
    )
    match: ExceptionMatch = Field(
        default_factory=ExceptionMatch, description="the workloads and images covered"
    )
    expires: str = Field(
        description="when the exception ends: a date (it holds through that day, UTC) or a timestamp with "
        "its zone; at most `--exception-max-days` ahead (365 by default) when it is loaded",
        json_schema_extra={"pattern": EXPIRES_PATTERN},
    )
    reason: str = Field(
        min_length=1, max_length=1024, description="why the workloads may fail the rules until then"
    )
    ticket: str | None = Field(
        default=None, max_length=256, description="the ticket tracking the migration, shown in warnings"
    )
    warn_days_before: int = Field(
        default=DEFAULT_WARN_DAYS,
        ge=0,
        le=365,
        description="in its last this many days, the admission warning says the exception is about to end",
    )

    @field_validator("expires", mode="before")
    @classmethod
    def _expires_text(cls, value: object) -> object:
        # YAML reads an unquoted `2027-03-31` as a date: take it as the text it was.
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("a timestamp needs its zone, e.g. 2027-03-31T18:00:00Z")
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return value

    @field_validator("expires")
    @classmethod
    def _expires(cls, value: str) -> str:
        if not _EXPIRES.match(value):
            raise ValueError(
                f"{value!r} is not a date (2027-03-31) nor a timestamp with its zone (2027-03-31T18:00:00Z)"
            )
        _end(value)  # a well-formed text can still name no day (2027-02-30)
        return value

    @cached_property
    def ends(self) -> datetime:
        """The first moment the exception no longer holds (aware, UTC)."""
        return _end(self.expires)


def _end(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(), tzinfo=UTC)
        return datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 2027-02-30; 9999-12-31 ends past the last date
        raise ValueError(f"{text!r} is not a real date or time: {exc}") from None


class ExceptionMetadata(BaseModel):
    """The object's metadata; the fields distroguard reads (the API server's others are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    name: str = Field(min_length=1, max_length=253, description="its name, shown in warnings and reports")
    namespace: str | None = Field(
        default=None,
        description="the namespace whose workloads it covers; may be left out in a file for "
        "`distroguard check`",
    )
    uid: str | None = Field(default=None, description="set by the API server")


class DistroPolicyException(_Spec):
    """A namespaced, time-bound exception: the workloads it matches may fail the rules it names until it
    expires, admitted with a warning and reported as `skip`."""

    api_version: Literal["distroguard.dev/v1alpha1"]
    kind: Literal["DistroPolicyException"]
    metadata: ExceptionMetadata
    spec: DistroPolicyExceptionSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @cached_property
    def ref(self) -> str:
        """`team-a/migrate-off-alpine` (the name alone when the namespace is unknown)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class ExceptionLimits:
    """What a cluster allows of exceptions beyond their schema (`--exception-max-days`)."""

    max_days: int = DEFAULT_MAX_DAYS

    def problems(self, exception: DistroPolicyException, now: datetime) -> list[str]:
        """Why `exception` is invalid at `now`: an end further ahead than allowed. (An exception past its
        end is not invalid: it is expired, and ignored as such.)"""
        latest = now.astimezone(UTC) + timedelta(days=self.max_days)
        spec = exception.spec
        if len(spec.expires) == 10:  # a date holds through its day
            too_far = date.fromisoformat(spec.expires) > latest.date()
        else:
            too_far = spec.ends > latest
        if too_far:
            return [
                f"spec.expires: {exception.spec.expires} is more than {self.max_days} days ahead "
                f"(--exception-max-days); the latest allowed now is {latest.date().isoformat()}"
            ]
        return []


@dataclass(frozen=True, slots=True)
class ExceptionUse:
    """How a finding is excepted: by which exception, until when, and what the rule would have done."""

    exception: str
    """`team-a/migrate-off-alpine`."""
    expires: str
    """As the exception says it."""
    ticket: str | None
    action: Action
    """The finding's action without the exception."""
    days_left: int
    """Whole days until the end (0: it ends within a day)."""
    ending: bool
    """Within the exception's `warnDaysBefore`: the warning says it is about to end."""
