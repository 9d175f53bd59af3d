"""Evaluating inventoried workloads, and the three forms of an audit: JSON, table, HTML."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from distroguard.admission.workloads import Container
from distroguard.audit.html import render_html
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.jsonreport import audit_json, render_json
from distroguard.audit.results import AuditResult, audit_workloads, summarize
from distroguard.audit.table import render_table
from distroguard.errors import RegistryError
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

CATALOG = make_catalog(
    product(
        "debian",
        "Debian",
        cycle("12", eol=days(400), codename="Bookworm"),
        cycle("11", eol=days(-100), codename="Bullseye"),
    ),
    product("alpine-linux", "Alpine Linux", cycle("3.21", eol=days(200))),
)
POLICIES = [
    policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]}),
    policy("no-eol", {"name": "supported", "support": {}}),
    policy("audit-musl", {"name": "musl", "denyLibc": ["musl"]}, action="audit"),
]
IMAGES = {
    "debian:11": facts("debian", "11", codename="bullseye", libc_version="2.31", reference="debian:11"),
    "debian:12": facts("debian", "12", codename="bookworm", reference="debian:12"),
    "alpine:3.21": facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", reference="alpine:3.21"),
    "<script>alert(1)</script>": RegistryError("r.example", "said <b>no</b>"),
}


def workload(kind: str, name: str, *images: str, pods: int = 1, ns: str = "shop") -> AuditedWorkload:
    containers = tuple(Container(f"c{i}", image, "containers") for i, image in enumerate(images))
    return AuditedWorkload(WorkloadRef(ns, kind, name), "pods" if pods else "template", containers, pods)


WORKLOADS = [
    workload("Deployment", "web", "debian:11", pods=3),
    workload("Deployment", "api", "debian:12", pods=0),
    workload("CronJob", "nightly", "alpine:3.21"),
    workload("Pod", "odd", "<script>alert(1)</script>"),
]


def audit() -> AuditResult:
    summaries = {image: summarize(image, outcome, CATALOG, TODAY) for image, outcome in IMAGES.items()}
    results = audit_workloads(
        WORKLOADS,
        {(w.ref, c.image): summaries[c.image] for w in WORKLOADS for c in w.containers},
        POLICIES,
        CATALOG,
        NOW,
        {},
    )
    return AuditResult(
        generated=NOW,
        context="test",
        namespace="shop",
        policies=tuple(p.name for p in POLICIES),
        catalog_snapshot=CATALOG.snapshot,
        workloads=results,
        problems=("<script>alert(1)</script>: registry r.example: said <b>no</b>",),
        images=tuple(summaries.values()),
    )


def test_every_policy_is_evaluated_whatever_its_action() -> None:
    result = audit()
    verdicts = {w.ref.name: w.verdict for w in result.workloads}
    assert verdicts == {"web": "deny", "api": "allow", "nightly": "deny", "odd": "warn"}
    nightly = next(w for w in result.workloads if w.ref.name == "nightly")
    assert {(f.policy, f.action) for f in nightly.decision.findings} == {
        ("no-musl", "deny"),
        ("audit-musl", "audit"),
    }
    odd = next(w for w in result.workloads if w.ref.name == "odd")
    assert odd.errors == ("registry r.example: said <b>no</b>",)
    assert {f.rule for f in odd.decision.findings} == {"onUnresolved"}


def test_eol_dates_come_from_the_catalog() -> None:
    summaries = {s.image: s for s in audit().images}
    assert (summaries["debian:11"].eol, summaries["debian:11"].eol_state) == (days(-100), "eol")
    assert (summaries["debian:12"].eol, summaries["debian:12"].eol_state) == (days(400), "active")
    assert summaries["alpine:3.21"].libc == "musl"
    assert summaries["<script>alert(1)</script>"].eol_state == "unknown"
    assert summarize("scratch", facts(None, None, libc="none"), CATALOG, TODAY).eol_state == "no-os"


def test_json_is_stable_and_sorted() -> None:
    data = json.loads(render_json(audit()))
    assert list(data) == [
        "kind",
        "version",
        "generated",
        "context",
        "namespace",
        "policies",
        "eolCatalog",
        "summary",
        "workloads",
        "images",
        "problems",
    ]
    assert data["summary"] == {"workloads": 4, "deny": 2, "warn": 1, "allow": 1, "images": 4, "problems": 1}
    assert [(w["kind"], w["name"]) for w in data["workloads"]] == [
        ("CronJob", "nightly"),
        ("Deployment", "api"),
        ("Deployment", "web"),
        ("Pod", "odd"),
    ]
    web = data["workloads"][2]
    assert (web["source"], web["pods"], web["eol"]) == ("pods", 3, days(-100).isoformat())
    assert set(web["containers"][0]) == {
        "container",
        "section",
        "image",
        "digest",
        "verdict",
        "os",
        "libc",
        "libcVersion",
        "eol",
        "eolState",
    }
    finding = web["findings"][0]
    assert set(finding) == {
        "policy",
        "rule",
        "action",
        "severity",
        "message",
        "suggestion",
        "container",
        "image",
    }
    assert data["workloads"][1]["source"] == "template"
    assert "error" in data["workloads"][3]["containers"][0]
    assert audit_json(audit()) == audit_json(audit())  # deterministic


def test_table_groups_by_verdict() -> None:
    buffer = io.StringIO()
    render_table(audit(), Console(file=buffer, width=200))
    text = buffer.getvalue()
    deny, warn, allow = text.index("DENY (2)"), text.index("WARN (1)"), text.index("ALLOW (1)")
    assert deny < text.index("shop/Deployment/web") < warn < text.index("shop/Pod/odd") < allow
    assert text.index("shop/Deployment/api") > allow
    assert "no-musl/no-musl" in text


def test_html_is_self_contained_and_escapes_data() -> None:
    page = render_html(audit())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>no</b>" not in page
    assert not re.search(r"(src|href)=", page)
    assert page.count("<script") == 2  # the summary data and the sorting code, both inline


def test_html_content() -> None:
    page = render_html(audit())
    assert 'id="count-deny" data-count="2"' in page
    assert 'data-name="musl" data-count="1"' in page
    assert 'data-name="glibc" data-count="2"' in page
    assert f'data-eol="{days(-100).isoformat()}"' in page  # web, on the timeline
    assert 'data-policy="no-musl" data-workload="CronJob shop/nightly"' in page
    assert 'data-policy="audit-musl" data-workload="CronJob shop/nightly"' not in page  # audit: no violation
    assert "Remedy:" in page
    assert page.count("<tr data-verdict=") == 4


def test_html_without_eol_dates_or_violations() -> None:
    result = audit()
    calm = AuditResult(
        generated=NOW,
        context="",
        namespace=None,
        policies=(),
        catalog_snapshot=TODAY,
        workloads=tuple(w for w in result.workloads if w.ref.name == "odd"),
    )
    page = render_html(calm)
    assert "No workload runs a release with a known end-of-life date." in page
    assert "all namespaces" in page
