"""An audit's results as `wgpolicyk8s.io/v1alpha2` reports (pure: the objects to write, not the writing).

- One PolicyReport per workload, in its namespace, named after it, `scope` the workload and an owner
  reference to it (garbage-collected with it). One result per (policy, rule, container) a policy covers:
  `pass`, `fail` (a violation, whatever the policy's action: an audit policy's violations are failures
  that are not enforced), `warn` (a warn action, or an advance warning such as EOL in N days), `error`
  (the image could not be inspected, or the fact the rule needs is unknown), `skip` (a live
  DistroPolicyException covers it: the exception, its expiry and ticket, and what the rule would have
  done are properties of the result).
- One ClusterPolicyReport, `distroguard-summary`: per (policy, rule), how many workloads pass and fail;
  and a `warn` result of its own (policy `distroguard`, rule `eol-data-age`) while the EOL data is older
  than the operator allows.

`content()` is what decides whether a report changed: everything but timestamps, so that an audit that
finds what the last one found writes nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from distroguard.audit.inventory import WorkloadRef
from distroguard.audit.reportfields import EOL_DATA, fields_of, rule_fields, scored
from distroguard.audit.results import AuditResult, ImageSummary, WorkloadResult
from distroguard.eol.products import NOT_COVERED, OS_PRODUCTS, ROLLING
from distroguard.model import Finding
from distroguard.model.policy import DistroPolicy
from distroguard.model.policyreport import (
    API_VERSION,
    MAX_MESSAGE,
    MAX_RESULTS,
    SOURCE,
    ObjectReference,
    PolicyReportBody,
    ReportResult,
    ReportSummary,
    Result,
    Timestamp,
)

MANAGED_BY = "app.kubernetes.io/managed-by"
LABELS = {MANAGED_BY: SOURCE}
SUMMARY_NAME = "distroguard-summary"
MAX_NAME = 253
_RANK: dict[Result, int] = {"error": 0, "fail": 1, "warn": 2, "skip": 3, "pass": 4}


def report_name(ref: WorkloadRef) -> str:
    """`distroguard-<kind>-<name>`; a name too long for an object gets a hash of itself instead of a tail."""
    name = f"{SOURCE}-{ref.kind.lower()}-{ref.name}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_NAME - 17]}-{digest}"


def result_of(finding: Finding) -> Result:
    if finding.exception is not None:
        return "skip"
    if finding.severity == "low":  # the image, or the fact the rule needs, could not be had
        return "error"
    if finding.severity == "medium" or finding.action == "warn":
        return "warn"
    return "pass" if finding.severity == "info" else "fail"


def _properties(container: str, image: ImageSummary) -> dict[str, str]:
    properties = {"container": container, "image": image.image, "os": image.distribution, "libc": image.libc}
    facts = image.facts
    if facts is not None and facts.digest:
        properties["digest"] = facts.digest
    if facts is not None:
        properties["platform"] = facts.platform  # the platform these facts are of (os/arch[/variant])
    if facts is not None and facts.base is not None:
        properties["base"] = facts.base.reference
        properties["baseHow"] = facts.base.how
        properties["baseVerified"] = {True: "true", False: "false", None: "unknown"}[facts.base.verified]
    if image.libc_version:
        properties["libcVersion"] = image.libc_version
    if image.eol is not None:
        properties["eol"] = image.eol.isoformat()
    properties["eolState"] = image.eol_state
    return properties


def _excepted_text(finding: Finding) -> str:
    use = finding.exception
    return "" if use is None else f"allowed by exception {use.exception} until {use.expires}: "


def _exception_properties(finding: Finding) -> dict[str, str]:
    use = finding.exception
    if use is None:
        return {}
    return {
        "exception": use.exception,
        "exceptionExpires": use.expires,
        "exceptedAction": use.action,
        **({"exceptionTicket": use.ticket} if use.ticket else {}),
    }


def _of_platform(image: ImageSummary, platform: str | None) -> ImageSummary:
    """The summary of the platform a finding is about (an image judged on several has one per platform)."""
    for each in image.platforms:
        if each.facts is not None and each.facts.platform == platform:
            return each
    return image


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def workload_results(
    result: WorkloadResult, policies: Sequence[DistroPolicy], stamp: Timestamp
) -> list[ReportResult]:
    """Every (policy, rule, container) result of one workload, failures first, at most MAX_RESULTS."""
    images = {c.container: c.image for c in result.containers}
    found: dict[tuple[str, str], list[Finding]] = {}
    for finding in result.decision.findings:
        found.setdefault((finding.policy, finding.container), []).append(finding)
    rules = {p.name: [r.name for r in p.spec.rules] for p in policies}
    grouping = rule_fields(policies)
    out: list[ReportResult] = []
    for policy, container in result.covered:
        image = images[container]
        findings = found.get((policy, container), [])
        failed = {f.rule for f in findings}
        for finding in findings:
            category, severity = fields_of(grouping, policy, finding.rule)
            outcome = result_of(finding)
            out.append(
                ReportResult(
                    policy=policy,
                    rule=finding.rule,
                    category=category,
                    severity=severity,
                    scored=scored(outcome),
                    timestamp=stamp,
                    result=outcome,
                    message=_cut(_excepted_text(finding) + finding.message),
                    properties={
                        **_properties(container, _of_platform(image, finding.platform)),
                        "reason": finding.reason,
                        **({"suggestion": finding.suggestion} if finding.suggestion else {}),
                        **_exception_properties(finding),
                    },
                )
            )
        if image.facts is None:
            continue  # no rule ran: the image could not be inspected (the onUnresolved result says so)
        for rule in rules.get(policy, ()):
            if rule not in failed:
                category, severity = fields_of(grouping, policy, rule)
                out.append(
                    ReportResult(
                        policy=policy,
                        rule=rule,
                        category=category,
                        severity=severity,
                        scored=True,
                        timestamp=stamp,
                        result="pass",
                        message=f"container {container}: {image.image} passes",
                        properties=_properties(container, image),
                    )
                )
    out.sort(key=lambda r: (_RANK[r.result], r.policy, r.rule or "", r.properties.get("container", "")))
    return out[:MAX_RESULTS]


def summary_of(results: Iterable[ReportResult]) -> ReportSummary:
    counts = Counter(r.result for r in results)
    return ReportSummary(
        pass_=counts["pass"],
        fail=counts["fail"],
        warn=counts["warn"],
        error=counts["error"],
        skip=counts["skip"],
    )


def _stamp(now: datetime) -> Timestamp:
    return Timestamp(seconds=int(now.timestamp()))


Results = Mapping[WorkloadRef, Sequence[ReportResult]]
"""Each workload's results (`results_of`): what its report, the summary and the tallies are made of."""


def results_of(
    audit: AuditResult, policies: Sequence[DistroPolicy], now: datetime
) -> dict[WorkloadRef, list[ReportResult]]:
    """Every workload's results, worked out once for the reports, the summary and the tallies."""
    stamp = _stamp(now)
    return {w.ref: workload_results(w, policies, stamp) for w in audit.workloads}


def workload_report(result: WorkloadResult, results: Sequence[ReportResult]) -> dict[str, Any]:
    """The PolicyReport object of one workload with its `results` (without resourceVersion: the writer's
    business)."""
    workload = result.workload
    ref = workload.ref
    scope = ObjectReference(
        api_version=workload.api_version,
        kind=ref.kind,
        namespace=ref.namespace,
        name=ref.name,
        uid=workload.uid or None,
    )
    body = PolicyReportBody(scope=scope, summary=summary_of(results), results=tuple(results))
    metadata: dict[str, Any] = {"name": report_name(ref), "namespace": ref.namespace, "labels": dict(LABELS)}
    if workload.uid:
        metadata["ownerReferences"] = [
            {"apiVersion": workload.api_version, "kind": ref.kind, "name": ref.name, "uid": workload.uid}
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport",
        "metadata": metadata,
        **body.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


EOL_DATA_POLICY = SOURCE
EOL_DATA_RULE = "eol-data-age"


def summary_report(
    audit: AuditResult, results_by: Results, now: datetime, *, stale_eol: str | None = None
) -> dict[str, Any]:
    """The ClusterPolicyReport: per (policy, rule), the workloads of each result, the worst first.
    `stale_eol`: the warning that the EOL data is too old (`eol.staleness`), added as a result."""
    stamp = _stamp(now)
    counts: dict[tuple[str, str], Counter[Result]] = {}
    examples: dict[tuple[str, str], list[str]] = {}
    grouping: dict[tuple[str, str], ReportResult] = {}  # a result of each rule: its category and severity
    for workload in audit.workloads:
        worst: dict[tuple[str, str], Result] = {}
        for r in results_by[workload.ref]:
            key = (r.policy, r.rule or "")
            grouping.setdefault(key, r)
            if key not in worst or _RANK[r.result] < _RANK[worst[key]]:
                worst[key] = r.result
        for key, outcome in worst.items():
            counts.setdefault(key, Counter())[outcome] += 1
            if outcome != "pass" and len(examples.setdefault(key, [])) < 5:
                examples[key].append(str(workload.ref))
    results: list[ReportResult] = []
    for (policy, rule), tally in counts.items():
        outcome = min(tally, key=lambda r: _RANK[r])
        total = sum(tally.values())
        text = ", ".join(f"{n} {r}" for r, n in sorted(tally.items(), key=lambda i: _RANK[i[0]]))
        named = examples.get((policy, rule))
        message = f"{total} workloads: {text}" + (f" (e.g. {'; '.join(named)})" if named else "")
        results.append(
            ReportResult(
                policy=policy,
                rule=rule,
                category=grouping[policy, rule].category,
                severity=grouping[policy, rule].severity,
                scored=scored(outcome),
                timestamp=stamp,
                result=outcome,
                message=_cut(message),
                properties={r: str(tally[r]) for r in ("pass", "fail", "warn", "error", "skip")},
            )
        )
    if stale_eol is not None:
        results.append(
            ReportResult(
                policy=EOL_DATA_POLICY,
                rule=EOL_DATA_RULE,
                category=EOL_DATA[0],
                severity=EOL_DATA[1],
                scored=scored("warn"),
                timestamp=stamp,
                result="warn",
                message=_cut(stale_eol),
                properties={"eolData": audit.catalog_snapshot.isoformat()},
            )
        )
    results.sort(key=lambda r: (_RANK[r.result], r.policy, r.rule or ""))
    results = results[:MAX_RESULTS]
    body = PolicyReportBody(summary=summary_of(results), results=tuple(results))
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterPolicyReport",
        "metadata": {"name": SUMMARY_NAME, "labels": dict(LABELS)},
        **body.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def content(report: dict[str, Any]) -> Any:
    """What a report says, without when it was said: two audits that found the same compare equal."""
    results = [{k: v for k, v in r.items() if k != "timestamp"} for r in report.get("results") or ()]
    metadata = report.get("metadata") or {}
    return (
        report.get("scope"),
        report.get("summary"),
        results,
        {key: (metadata.get("labels") or {}).get(key) for key in LABELS},
        metadata.get("ownerReferences"),
    )


KNOWN_OS_IDS = frozenset({*OS_PRODUCTS, *ROLLING, *NOT_COVERED, "opensuse", "none", "unknown"})
"""The os ids the metrics name ("none": no OS; "unknown": unresolved); any other is `OTHER`."""
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Tallies:
    """What an audit found, counted for metrics."""

    images: Counter[tuple[str, str, str, str]]
    """Distinct images by (os id, release cycle, libc family, EOL state): an id the EOL tables know (else
    `other`) and a cycle of the catalog. An image's os-release is its author's text, and whoever creates a
    pod chooses the image: a label per value it says would let them grow the metrics without bound."""
    violations: Counter[tuple[str, str, str]]
    """Workloads by (policy, rule, result) for results other than pass."""
    workloads: Counter[str]
    """Workloads by verdict."""
    eol_workloads: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Workloads by (os id, release cycle) of a distribution release past its end of life that one of their
    images (on any platform judged) runs on; a workload counts once per such release."""


def _metric_os(image: ImageSummary) -> str:
    return image.distro_id if image.distro_id in KNOWN_OS_IDS else OTHER


def tallies(audit: AuditResult, results_by: Results) -> Tallies:
    images: Counter[tuple[str, str, str, str]] = Counter()
    for image in audit.images:
        images[_metric_os(image), image.cycle, image.libc, image.eol_state] += 1
    eol_workloads: Counter[tuple[str, str]] = Counter()
    for workload in audit.workloads:
        summaries = [s for c in workload.containers for s in (c.image, *c.image.platforms)]
        eol_workloads.update({(_metric_os(s), s.cycle) for s in summaries if s.eol_state == "eol"})
    violations: Counter[tuple[str, str, str]] = Counter()
    for workload in audit.workloads:
        worst = {(r.policy, r.rule or "", r.result) for r in results_by[workload.ref] if r.result != "pass"}
        violations.update(worst)
    return Tallies(images, violations, Counter(w.verdict for w in audit.workloads), eol_workloads)
