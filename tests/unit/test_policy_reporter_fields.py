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

from distroguard.audit.reportfields import fields_of, rule_fields
from distroguard.model.decision import FALSE_BASE_RULE, NO_PLATFORM_RULE, UNRESOLVED_RULE
from distroguard.model.policy import RULE_KINDS
from support.policies import policy
from support.report_samples import sample_reports

SEVERITIES = ("info", "low", "medium", "high", "critical")
"""Policy Reporter's severity levels, lowest first."""
RESULTS = ("pass", "fail", "warn", "error", "skip")


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    return sample_reports()


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
