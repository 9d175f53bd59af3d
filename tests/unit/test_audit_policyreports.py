"""An audit as PolicyReports, ImageFacts records and metric tallies (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.policyreports import (
    MAX_NAME,
    SUMMARY_NAME,
    content,
    report_name,
    results_of,
    summary_report,
    tallies,
    workload_report,
    workload_results,
)
from distroguard.audit.records import Seen, merged, needs_write, records_of
from distroguard.audit.results import AuditResult, WorkloadResult, audit_workloads, summarize
from distroguard.eol import staleness
from distroguard.errors import RegistryError
from distroguard.model import ImageFacts
from distroguard.model.policyreport import MAX_RESULTS, PolicyReportBody, Timestamp
from distroguard.model.record import MAX_EVIDENCE, MAX_REFERENCES, MAX_TEXT, FactsRecord, object_name
from distroguard.operator.audit.events import notice_of
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

CATALOG = make_catalog(
    product("debian", "Debian", cycle("12", eol=days(400)), cycle("11", eol=days(-100))),
    product("alpine-linux", "Alpine Linux", cycle("3.21", eol=days(200))),
)
POLICIES = [
    policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]}, action="audit"),
    policy("supported", {"name": "supported", "support": {}}, {"name": "glibc", "minGlibc": "2.28"}),
    policy("elsewhere", {"name": "no-musl", "denyLibc": ["musl"]}, match={"namespaces": ["other"]}),
]
DIGESTS = {name: "sha256:" + f"{i:x}" * 64 for i, name in enumerate(("debian:11", "debian:12", "alpine"), 1)}
IMAGES: dict[str, ImageFacts | Exception] = {
    "debian:11": facts("debian", "11", libc_version="2.31", reference="debian:11"),
    "debian:12": facts("debian", "12", reference="debian:12"),
    "alpine": facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", reference="alpine"),
    "gone:1": RegistryError("r.example", "manifest unknown"),
}
for _name, _digest in DIGESTS.items():
    IMAGES[_name] = IMAGES[_name].model_copy(update={"digest": _digest})  # type: ignore[union-attr]


def workload(kind: str, name: str, *images: str, uid: str = "u-1") -> AuditedWorkload:
    containers = tuple(Container(f"c{i}", image, "containers") for i, image in enumerate(images))
    return AuditedWorkload(
        WorkloadRef("shop", kind, name), "pods", containers, 1, uid=uid, api_version="apps/v1"
    )


def audit(*workloads: AuditedWorkload) -> AuditResult:
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


def report_of(workload: WorkloadResult, now: datetime) -> dict[str, Any]:
    return workload_report(
        workload, workload_results(workload, POLICIES, Timestamp(seconds=int(now.timestamp())))
    )


def results_by_rule(report: dict[str, object]) -> dict[tuple[str, str, str], str]:
    return {
        (r["policy"], r["rule"], r["properties"]["container"]): r["result"]  # type: ignore[index]
        for r in report["results"]  # type: ignore[attr-defined]
    }


def test_a_workload_report_has_a_result_per_policy_rule_and_container() -> None:
    result = audit(workload("Deployment", "web", "debian:11", "alpine"))
    report = report_of(result.workloads[0], NOW)
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert report["kind"] == "PolicyReport"
    assert report["metadata"]["name"] == "distroguard-deployment-web"
    assert report["metadata"]["namespace"] == "shop"
    assert report["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1"}
    ]
    assert report["scope"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "uid": "u-1",
    }
    assert results_by_rule(report) == {
        # An audit policy's violation is a failure that is not enforced.
        ("no-musl", "no-musl", "c0"): "pass",
        ("no-musl", "no-musl", "c1"): "fail",
        ("supported", "supported", "c0"): "fail",
        ("supported", "glibc", "c0"): "pass",
        ("supported", "supported", "c1"): "pass",
        ("supported", "glibc", "c1"): "fail",  # musl is not glibc at any version
    }
    assert report["summary"]["pass"] == 3
    failing = next(r for r in report["results"] if r["result"] == "fail" and r["policy"] == "no-musl")
    assert failing["source"] == "distroguard"
    assert (failing["category"], failing["severity"], failing["scored"]) == ("C library", "medium", True)
    assert "musl" in failing["message"]
    assert failing["properties"]["image"] == "alpine"
    assert failing["properties"]["digest"] == DIGESTS["alpine"]
    assert failing["properties"]["platform"] == "linux/amd64"  # the platform the facts are of
    assert failing["properties"]["libc"] == "musl"
    assert failing["properties"]["reason"]
    # The document is what the CRD's model accepts.
    PolicyReportBody.model_validate({k: v for k, v in report.items() if k in ("scope", "summary", "results")})


def test_a_workload_whose_pods_run_what_a_policy_denies_fails_though_its_pods_are_only_warned_about() -> None:
    """`controlledPods: warn` (the default, as the `supported` policy has it) softens admission of the pods
    a controller makes, never the audit: the workload that runs them fails in its report and gets an Event."""
    assert all(p.spec.controlled_pods == "warn" for p in POLICIES)
    (result,) = audit(workload("Deployment", "web", "debian:11")).workloads
    assert result.workload.source == "pods"
    assert result.verdict == "deny"
    report = report_of(result, NOW)
    assert results_by_rule(report)[("supported", "supported", "c0")] == "fail"
    notice = notice_of(result)
    assert notice is not None
    assert (notice.kind, notice.name) == ("Deployment", "web")
    assert "supported/supported (deny)" in notice.message


def test_an_uninspected_image_is_an_error_and_no_rule_passes_for_it() -> None:
    result = audit(workload("Pod", "odd", "gone:1"))
    report = report_of(result.workloads[0], NOW)
    assert {r["result"] for r in report["results"]} == {"error"}
    assert {r["rule"] for r in report["results"]} == {"onUnresolved"}


def test_reports_change_only_when_their_content_does() -> None:
    result = audit(workload("Deployment", "web", "debian:11"))
    first = report_of(result.workloads[0], NOW)
    later = report_of(result.workloads[0], NOW + timedelta(hours=1))
    assert first != later  # the timestamps moved...
    assert content(first) == content(later)  # ...and nothing else
    stored = {
        **later,
        "metadata": {
            **later["metadata"],
            "resourceVersion": "7",
            "labels": {**later["metadata"]["labels"], "team": "x"},
        },
    }
    assert content(stored) == content(first)  # the server's fields and other tools' labels are not ours
    other = audit(workload("Deployment", "web", "alpine"))
    assert content(report_of(other.workloads[0], NOW)) != content(first)


def test_long_names_are_cut_with_a_hash() -> None:
    long = report_name(WorkloadRef("ns", "Deployment", "a" * 300))
    other = report_name(WorkloadRef("ns", "Deployment", "a" * 299 + "b"))
    assert len(long) == MAX_NAME
    assert len(other) == MAX_NAME
    assert long != other


def test_a_report_holds_at_most_max_results_the_worst_first() -> None:
    many = workload("Deployment", "big", *(["alpine"] * 150 + ["debian:12"] * 150))
    report = report_of(audit(many).workloads[0], NOW)
    assert len(report["results"]) == MAX_RESULTS
    assert report["results"][0]["result"] == "fail"


def test_the_cluster_summary_counts_workloads_per_rule() -> None:
    result = audit(
        workload("Deployment", "web", "debian:11"),
        workload("Deployment", "api", "debian:12", uid="u-2"),
        workload("CronJob", "nightly", "alpine", uid="u-3"),
    )
    summary = summary_report(result, results_of(result, POLICIES, NOW), NOW)
    assert summary["kind"] == "ClusterPolicyReport"
    assert summary["metadata"]["name"] == SUMMARY_NAME
    rules = {(r["policy"], r["rule"]): r for r in summary["results"]}
    musl = rules["no-musl", "no-musl"]
    assert musl["result"] == "fail"
    assert (musl["properties"]["fail"], musl["properties"]["pass"]) == ("1", "2")
    assert "CronJob shop/nightly" in musl["message"]
    assert ("elsewhere", "no-musl") not in rules  # it covers no workload here


def test_tallies_count_images_violations_and_verdicts() -> None:
    result = audit(
        workload("Deployment", "web", "debian:11"),
        workload("CronJob", "nightly", "alpine", uid="u-3"),
    )
    found = tallies(result, results_of(result, POLICIES, NOW))
    assert found.images["alpine", "3.21", "musl", "active"] == 1  # the catalog's cycle, not VERSION_ID
    assert found.images["unknown", "", "unknown", "unknown"] == 1  # the image that could not be read
    assert found.images["debian", "11", "glibc", "eol"] == 1
    assert found.violations["no-musl", "no-musl", "fail"] == 1
    assert found.violations["supported", "supported", "fail"] == 1
    assert sum(found.workloads.values()) == 2
    assert found.eol_workloads == {("debian", "11"): 1}


def test_a_workload_counts_once_per_eol_release_it_runs() -> None:
    result = audit(
        workload("Deployment", "web", "debian:11", "debian:11", "alpine"),
        workload("Deployment", "api", "debian:11", uid="u-2"),
        workload("Deployment", "new", "debian:12", uid="u-3"),
    )
    found = tallies(result, results_of(result, POLICIES, NOW))
    assert found.eol_workloads == {("debian", "11"): 2}


# ------------------------------------------------------------------------------- ImageFacts records


def seen(image: str, reference: str | None = None, access: str = "public") -> Seen:
    outcome = IMAGES[image]
    assert isinstance(outcome, ImageFacts)
    summary = summarize(image, outcome, CATALOG, TODAY)
    return Seen(reference or image, (summary,), outcome.digest, access)  # type: ignore[arg-type]


def test_one_record_per_digest_with_every_reference() -> None:
    records = records_of([seen("debian:12"), seen("debian:12", "mirror/debian:12"), seen("alpine")], NOW)
    assert set(records) == {DIGESTS["debian:12"], DIGESTS["alpine"]}
    debian = records[DIGESTS["debian:12"]]
    assert {r.image for r in debian.references} == {"debian:12", "mirror/debian:12"}
    (platform,) = debian.platforms
    assert platform.os is not None
    assert platform.os.id == "debian"
    assert platform.eol is not None
    assert platform.eol.state == "active"
    assert debian.access == "public"
    # What the resolver caches comes back out.
    assert debian.facts("debian:12")[0].os == IMAGES["debian:12"].os  # type: ignore[union-attr]
    assert object_name(debian.digest) == debian.digest.replace(":", "-")


def test_facts_needing_credentials_stay_private() -> None:
    records = records_of([seen("alpine"), seen("alpine", "private/alpine", access="private")], NOW)
    assert records[DIGESTS["alpine"]].access == "private"


def test_a_record_is_written_on_change_or_to_move_last_seen_once_in_a_while() -> None:
    stored = records_of([seen("debian:12")], NOW)[DIGESTS["debian:12"]]
    again = records_of([seen("debian:12")], NOW + timedelta(minutes=5))[DIGESTS["debian:12"]]
    hour = timedelta(hours=1)
    assert not needs_write(stored, merged(stored, again), hour)
    later = records_of([seen("debian:12")], NOW + timedelta(hours=2))[DIGESTS["debian:12"]]
    assert needs_write(stored, merged(stored, later), hour)
    another = records_of([seen("debian:12", "other/debian:12")], NOW)[DIGESTS["debian:12"]]
    both = merged(stored, another)
    assert {r.image for r in both.references} == {"debian:12", "other/debian:12"}
    assert needs_write(stored, both, hour)
    assert needs_write(None, stored, hour)


def test_records_are_bounded() -> None:
    base = IMAGES["debian:12"]
    assert isinstance(base, ImageFacts)
    huge = base.model_copy(
        update={
            "evidence": base.evidence * 100,
            "os": base.os.model_copy(update={"pretty_name": "x" * 100_000}),  # type: ignore[union-attr]
        }
    )
    summary = summarize("debian:12", huge, CATALOG, TODAY)
    items = [Seen(f"r{i}/debian:12", (summary,), huge.digest, "public") for i in range(100)]
    record = records_of(items, NOW)[DIGESTS["debian:12"]]
    assert len(record.references) == MAX_REFERENCES
    (platform,) = record.platforms
    assert len(platform.evidence) <= MAX_EVIDENCE
    assert platform.os is not None
    assert len(platform.os.pretty_name or "") == MAX_TEXT
    assert len(record.model_dump_json()) < 64 * 1024


def test_a_malformed_record_is_refused() -> None:
    with pytest.raises(ValidationError):
        FactsRecord.model_validate(
            {"digest": "sha256:nothex", "image": "a", "resolvedAt": NOW, "lastSeen": NOW}
        )
    with pytest.raises(ValueError, match="not a sha256 digest"):
        object_name("md5:abc")


def test_stale_eol_data_is_a_warning_of_its_own_in_the_cluster_summary() -> None:
    result = audit(workload("Deployment", "web", "debian:12"))
    results = results_of(result, POLICIES, NOW)
    assert all(r["policy"] != "distroguard" for r in summary_report(result, results, NOW)["results"])
    warning = staleness(TODAY - timedelta(days=45), TODAY, 30)
    assert warning is not None
    summary = summary_report(result, results, NOW, stale_eol=warning)
    [stale] = [r for r in summary["results"] if r["policy"] == "distroguard"]
    assert stale["rule"] == "eol-data-age"
    assert stale["result"] == "warn"
    assert "45 days old" in stale["message"]
    assert stale["properties"] == {"eolData": TODAY.isoformat()}
    assert summary["summary"]["warn"] == summary_report(result, results, NOW)["summary"].get("warn", 0) + 1
