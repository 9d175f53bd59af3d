"""`wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport: the report format of the Kubernetes
Policy working group, which Policy Reporter and Kyverno users already read.

These models write distroguard's reports and generate the two CRDs for clusters that do not have them yet
(`python -m codegen.crds`). Unlike distroguard's own kinds, the fields sit at the top level of the
object (no `spec`), as the format defines them; fields distroguard never writes (`scopeSelector`,
`resourceSelector`) are kept open in the schema so that another tool's reports still validate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "distroguard"
MAX_RESULTS = 200
"""Results kept in one report: a workload with more containers x rules than this is cut (and says so)."""
MAX_MESSAGE = 1024

Result = Literal["pass", "fail", "warn", "error", "skip"]
ReportSeverity = Literal["critical", "high", "medium", "low", "info"]


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)


class ObjectReference(_Report):
    """The object a report or a result is about."""

    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None


class Timestamp(_Report):
    seconds: int
    nanos: int = 0


class ReportResult(_Report):
    """One policy rule's outcome for one resource."""

    source: str = SOURCE
    policy: str
    rule: str | None = None
    category: str | None = None
    severity: ReportSeverity | None = None
    timestamp: Timestamp | None = None
    result: Result
    scored: bool = True
    resources: tuple[ObjectReference, ...] = ()
    message: str | None = Field(default=None, max_length=MAX_MESSAGE)
    properties: dict[str, str] = {}


class ReportSummary(_Report):
    """How many results of each kind."""

    pass_: int = Field(default=0, alias="pass")
    fail: int = 0
    warn: int = 0
    error: int = 0
    skip: int = 0


class PolicyReportBody(_Report):
    """The fields of a PolicyReport or ClusterPolicyReport besides apiVersion, kind and metadata."""

    scope: ObjectReference | None = None
    summary: ReportSummary = ReportSummary()
    results: tuple[ReportResult, ...] = Field(default=(), max_length=MAX_RESULTS)
