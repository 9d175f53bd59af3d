"""PolicyReport results carry what Policy Reporter groups and filters by.

Policy Reporter (kyverno/policy-reporter) groups a source's results by `category`, putting a result without
one under "Other"; it counts and filters them by `severity`, ordered "" < info < low < medium < high <
critical, a result without one counting as unknown; its notification targets send results from a
`minimumSeverity` on; its UI configures each `source` by name. The wgpolicyk8s.io format defines `warn` as
"not met, and the policy is not scored". These tests hold distroguard's reports to that.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.policyreports import results_of, summary_report, workload_report
from distroguard.audit.reportfields import fields_of, rule_fields
from distroguard.audit.results import AuditResult, audit_workloads, summarize
from distroguard.errors import RegistryError
from distroguard.model import ImageFacts
from distroguard.model.decision import FALSE_BASE_RULE, NO_PLATFORM_RULE, UNRESOLVED_RULE
from distroguard.model.policy import RULE_KINDS
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

SEVERITIES = ("info", "low", "medium", "high", "critical")
"""Policy Reporter's severity levels, lowest first."""
RESULTS = ("pass", "fail", "warn", "error", "skip")

CATALOG = make_catalog(
    product("debian", "Debian", cycle("12", eol=days(20)), cycle("11", eol=days(-100))),
    product("alpine-linux", "Alpine Linux", cycle("3.21", eol=days(200))),
)
POLICIES = [
    policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]}, action="deny"),
    policy("supported", {"name": "supported", "support": {"warnDaysBefore": 30}}, action="warn"),
    policy("lts", {"name": "lts", "requireLTS": {}}, action="audit"),
]
IMAGES: dict[str, ImageFacts | Exception] = {
    "debian:11": facts("debian", "11", libc_version="2.31", reference="debian:11"),
    "debian:12": facts("debian", "12", reference="debian:12"),
    "alpine": facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", reference="alpine"),
    "gone:1": RegistryError("r.example", "manifest unknown"),
}


def audit() -> AuditResult:
    workloads = [
        AuditedWorkload(
            WorkloadRef("shop", "Deployment", name),
            "pods",
            (Container("app", image, "containers"),),
            1,
            uid=f"u-{name}",
            api_version="apps/v1",
        )
        for name, image in (
            ("old", "debian:11"),
            ("soon", "debian:12"),
            ("musl", "alpine"),
            ("gone", "gone:1"),
        )
    ]
    summaries = {image: summarize(image, outcome, CATALOG, TODAY) for image, outcome in IMAGES.items()}
    results = audit_workloads(
        workloads,
        {(w.ref, c.image): summaries[c.image] for w in workloads for c in w.containers},
        POLICIES,
        CATALOG,
        NOW,
        {},
    )
    return AuditResult(NOW, "test", None, (), CATALOG.snapshot, results, images=tuple(summaries.values()))


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    result = audit()
    by_workload = results_of(result, POLICIES, NOW)
    workload_reports = [workload_report(w, by_workload[w.ref]) for w in result.workloads]
    return [*workload_reports, summary_report(result, by_workload, NOW, stale_eol="EOL data is 40 days old")]


def every_result(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for report in reports for r in report["results"]]


def test_every_result_names_its_source_category_and_severity(reports: list[dict[str, Any]]) -> None:
    results = every_result(reports)
    assert {r["result"] for r in results} >= {"pass", "fail", "warn", "error"}  # the cases below all occur
    for result in results:
        assert result["source"] == "distroguard", result
        assert result["category"], result
        assert result["category"] != "Other", result
        assert result["severity"] in SEVERITIES, result
        assert result["result"] in RESULTS, result


def test_warn_results_are_not_scored_and_the_others_are(reports: list[dict[str, Any]]) -> None:
    results = every_result(reports)
    assert any(r["result"] == "warn" for r in results)
    for result in results:
        assert result["scored"] is (result["result"] != "warn"), result


def test_a_rule_s_results_share_its_category_and_severity_whatever_their_outcome(
    reports: list[dict[str, Any]],
) -> None:
    """Kyverno's way (a policy's severity annotation on all its results): filtering by severity shows how
    those rules fare, passes included, and one rule never lands in two groups."""
    by_rule: dict[tuple[str, str], set[tuple[str, str]]] = {}
    outcomes: dict[tuple[str, str], Counter[str]] = {}
    for result in every_result(reports):
        key = (result["policy"], result["rule"])
        by_rule.setdefault(key, set()).add((result["category"], result["severity"]))
        outcomes.setdefault(key, Counter())[result["result"]] += 1
    assert all(len(fields) == 1 for fields in by_rule.values()), by_rule
    assert by_rule["no-musl", "no-musl"] == {("C library", "medium")}
    assert by_rule["supported", "supported"] == {("End of life", "high")}
    assert by_rule["lts", "lts"] == {("LTS releases", "low")}
    assert by_rule["no-musl", UNRESOLVED_RULE] == {("Image inspection", "medium")}
    assert by_rule["distroguard", "eol-data-age"] == {("EOL data", "medium")}
    # The same rule passes somewhere and fails elsewhere under one category.
    assert {"pass", "fail"} <= set(outcomes["no-musl", "no-musl"])
    assert {"pass", "warn"} <= set(outcomes["supported", "supported"])  # a warn policy's failures warn


def test_summaries_count_the_results(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        counted = Counter(r["result"] for r in report["results"])
        assert report["summary"] == {kind: counted[kind] for kind in RESULTS}


def test_every_rule_kind_and_built_in_rule_has_its_fields() -> None:
    kinds = {kind for _, kind in RULE_KINDS}
    rules = [{"name": kind.lower(), kind: value} for kind, value in SAMPLE_RULES.items()]
    assert set(SAMPLE_RULES) == kinds
    fields = rule_fields([policy("all", *rules)])
    assert len(fields) == len(kinds)
    assert {severity for _, severity in fields.values()} <= set(SEVERITIES)
    for rule in (UNRESOLVED_RULE, NO_PLATFORM_RULE, FALSE_BASE_RULE):
        category, severity = fields_of(fields, "all", rule)
        assert category != fields_of({}, "all", "no-such-rule")[0]
        assert severity in SEVERITIES


SAMPLE_RULES: dict[str, Any] = {
    "allowDistros": [{"id": "debian"}],
    "denyDistros": [{"id": "alpine"}],
    "denyLibc": ["musl"],
    "minGlibc": "2.28",
    "support": {},
    "requireLTS": {},
    "runtimes": {"names": ["python"]},
    "requireKnownOS": {},
    "maxImageSize": "1Gi",
}
