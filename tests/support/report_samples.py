"""Sample PolicyReports, as an audit of four workloads against three policies writes them (pure): a deny
policy's failure, a warn policy's warnings, an audit policy's results, an image that could not be read, and
the summary with its stale-EOL-data warning. For the tests of the reports' fields and of their schema."""

from __future__ import annotations

from typing import Any

from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.policyreports import results_of, summary_report, workload_report
from distroguard.audit.results import AuditResult, audit_workloads, summarize
from distroguard.errors import RegistryError
from distroguard.model import ImageFacts
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

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


def sample_reports() -> list[dict[str, Any]]:
    """A PolicyReport per workload of `audit()`, then the ClusterPolicyReport."""
    result = audit()
    by_workload = results_of(result, POLICIES, NOW)
    workload_reports = [workload_report(w, by_workload[w.ref]) for w in result.workloads]
    return [*workload_reports, summary_report(result, by_workload, NOW, stale_eol="EOL data is 40 days old")]
