"""The CI reports of `check` and `audit`: SARIF 2.1.0 (validated against the OASIS schema, vendored), JUnit
XML (parsed back) and GitHub workflow commands (escaped as GitHub's toolkit escapes them)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.results import AuditResult, audit_workloads, summarize
from distroguard.cli.reports import Checked, Location, render, rules_of
from distroguard.cli.reports.commands import artifact_path, audit_report
from distroguard.cli.reports.github import escape_data, escape_property
from distroguard.cli.reports.items import checked_images
from distroguard.errors import RegistryError
from distroguard.model import Decision, ImageFacts
from distroguard.model.exception import ExceptionUse
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
SARIF = jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text()))

CATALOG = make_catalog(
    product(
        "debian",
        "Debian",
        cycle("13", eol=days(900), codename="Trixie"),
        cycle("12", eol=days(30), codename="Bookworm"),
    ),
    product("alpine-linux", "Alpine Linux", cycle("3.21", eol=days(200))),
)
POLICIES = [
    policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]}),
    policy("supported", {"name": "distro", "support": {"warnDaysBefore": 90}}),
    policy("audit-musl", {"name": "musl", "denyLibc": ["musl"]}, action="audit"),
    policy("team-only", {"name": "lts", "requireLTS": {}}, match={"images": ["registry.example/team/*"]}),
]
IMAGES: dict[str, ImageFacts | RegistryError] = {
    "alpine:3.21": facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", reference="alpine:3.21"),
    "debian:12": facts("debian", "12", codename="bookworm", reference="debian:12"),
    "debian:13": facts("debian", "13", codename="trixie", libc_version="2.41", reference="debian:13"),
    "gone:1": RegistryError("r.example", "manifest unknown"),
}
DOCKERFILE = Location("build/Dockerfile", 4)


def decide(image: str, found: ImageFacts) -> tuple[str, ImageFacts, Decision]:
    decision = evaluate([ContainerImage(image, image, found)], POLICIES, EvaluationContext(now=NOW), CATALOG)
    return image, found, decision


def checked(locations: dict[str, Location] | None = None) -> list[Checked]:
    decisions = [decide(image, found) for image, found in IMAGES.items() if isinstance(found, ImageFacts)]
    return checked_images(
        list(IMAGES.items()),
        decisions,
        POLICIES,
        NOW,
        {"alpine:3.21": DOCKERFILE} if locations is None else locations,
    )


def sarif(items: list[Checked]) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render("sarif", items, POLICIES))
    return log


def results_of(log: dict[str, Any], image: str) -> dict[str, dict[str, Any]]:
    """ruleId -> result, for one image's results."""
    return {r["ruleId"]: r for r in log["runs"][0]["results"] if r["properties"]["image"] == image}


# SARIF


def test_sarif_is_valid_against_the_sarif_2_1_0_schema() -> None:
    log = sarif(checked())
    SARIF.validate(log)
    assert log["version"] == "2.1.0"
    driver = log["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["informationUri"]) == ("distroguard", "https://distroguard.dev")
    assert driver["version"]


def test_the_schema_check_can_fail() -> None:
    log = sarif(checked())
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        SARIF.validate(log)
    del log["version"]
    assert not SARIF.is_valid(log)


def test_one_rule_per_policy_rule_with_its_descriptions() -> None:
    rules = sarif(checked())["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [
        "no-musl/no-musl",
        "supported/distro",
        "audit-musl/musl",
        "team-only/lts",
    ]
    no_musl = rules[0]
    assert no_musl["shortDescription"]["text"] == 'no-musl/no-musl: denyLibc ["musl"] (deny)'
    assert "C libraries that fail" in no_musl["fullDescription"]["text"]
    assert no_musl["helpUri"].endswith("policy-reference#denylibc")
    assert no_musl["defaultConfiguration"] == {"level": "error"}
    assert no_musl["help"]["text"].startswith(
        'no-musl/no-musl: denyLibc ["musl"] (deny). C libraries that fail'
    )
    assert rules[2]["defaultConfiguration"] == {"level": "note"}
    assert rules[1]["shortDescription"]["text"] == 'supported/distro: support {"warnDaysBefore": 90} (deny)'


def test_levels_follow_the_action_and_results_point_at_their_rule() -> None:
    log = sarif(checked())
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    alpine = results_of(log, "alpine:3.21")
    assert {rule: r["level"] for rule, r in alpine.items()} == {
        "no-musl/no-musl": "error",
        "audit-musl/musl": "note",
    }
    # An advance warning of a deny rule warns.
    assert {rule: r["level"] for rule, r in results_of(log, "debian:12").items()} == {
        "supported/distro": "warning"
    }
    assert results_of(log, "debian:13") == {}
    for result in log["runs"][0]["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert "musl" in alpine["no-musl/no-musl"]["message"]["text"]


def test_a_dockerfile_image_is_located_at_its_from_line_and_others_by_name() -> None:
    log = sarif(checked())
    (location,) = results_of(log, "alpine:3.21")["no-musl/no-musl"]["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "build/Dockerfile"},
        "region": {"startLine": 4},
    }
    assert location["logicalLocations"][0]["name"] == "alpine:3.21"
    (location,) = results_of(log, "debian:12")["supported/distro"]["locations"]
    assert "physicalLocation" not in location
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "debian:12: debian:12 (linux/amd64)"


def test_an_image_that_cannot_be_resolved_is_an_execution_error() -> None:
    invocation = sarif(checked())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert "manifest unknown" in notification["message"]["text"]
    resolved = [item for item in checked() if item.error is None]
    assert sarif(resolved)["runs"][0]["invocations"][0] == {"executionSuccessful": True}


def test_an_excepted_finding_is_a_suppressed_note() -> None:
    item = checked()[0]
    finding = next(f for f in item.findings if f.policy == "no-musl")
    use = ExceptionUse("team-a/move-off-alpine", "2026-04-01", "OPS-1", "deny", 22, False)
    excepted = dataclasses.replace(finding, action="audit", exception=use)
    log = sarif([dataclasses.replace(item, findings=(excepted,))])
    SARIF.validate(log)
    (result,) = log["runs"][0]["results"]
    assert result["level"] == "note"
    assert result["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "DistroPolicyException team-a/move-off-alpine until 2026-04-01, ticket OPS-1",
        }
    ]


def test_a_policy_wide_finding_has_a_rule_of_its_own() -> None:
    decision = evaluate(
        [ContainerImage("gone:1", "gone:1", None, unresolved="deadline exceeded")],
        POLICIES[:1],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    items = [
        Checked("gone:1", "gone:1", "gone:1", decision.verdict, decision.findings, frozenset({"no-musl"}))
    ]
    log = json.loads(render("sarif", items, POLICIES[:1]))
    SARIF.validate(log)
    ids = [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]
    assert ids == ["no-musl/no-musl", "no-musl/onUnresolved"]
    assert log["runs"][0]["results"][0]["ruleIndex"] == 1


def test_rules_of_names_every_rule_once_in_order() -> None:
    assert [rule.id for rule in rules_of(POLICIES)] == [
        "no-musl/no-musl",
        "supported/distro",
        "audit-musl/musl",
        "team-only/lts",
    ]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="no report format 'xml'"):
        render("xml", [], POLICIES)


# JUnit


def junit(items: list[Checked]) -> ET.Element:
    text = render("junit", items, POLICIES)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode())


def counts(element: ET.Element) -> dict[str, int]:
    return {key: int(element.get(key, "-1")) for key in ("tests", "failures", "errors", "skipped")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in suite.iter("testcase")}


def test_junit_has_a_case_per_image_and_policy_rule_and_counts_them() -> None:
    root = junit(checked())
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["alpine:3.21", "debian:12", "debian:13", "gone:1"]
    for suite in [*suites.values(), root]:
        found = list(suite.iter("testcase"))
        assert counts(suite) == {
            "tests": len(found),
            "failures": sum(case.find("failure") is not None for case in found),
            "errors": sum(case.find("error") is not None for case in found),
            "skipped": sum(case.find("skipped") is not None for case in found),
        }
    assert counts(root) == {"tests": 13, "failures": 1, "errors": 1, "skipped": 3}
    assert list(cases(suites["debian:13"])) == [rule.id for rule in rules_of(POLICIES)]
    assert {case.get("classname") for case in suites["debian:13"].iter("testcase")} == {
        "debian:13 (linux/amd64)"
    }


def test_junit_deny_fails_warn_passes_with_output_and_uncovered_rules_are_skipped() -> None:
    suites = {suite.get("name"): suite for suite in junit(checked()).findall("testsuite")}
    alpine = cases(suites["alpine:3.21"])
    failure = alpine["no-musl/no-musl"].find("failure")
    assert failure is not None
    assert "musl" in failure.get("message", "")
    assert failure.get("type") == "libc-denied"
    assert (failure.text or "").startswith('container "alpine:3.21" uses alpine:3.21')
    noted = alpine["audit-musl/musl"]
    assert noted.find("failure") is None
    assert (noted.findtext("system-out") or "").startswith("audit: ")
    warned = cases(suites["debian:12"])["supported/distro"]
    assert warned.find("failure") is None
    assert (warned.findtext("system-out") or "").startswith("warn: ")
    skipped = alpine["team-only/lts"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "policy team-only does not cover this image"
    assert list(alpine["supported/distro"]) == []  # passed
    (error,) = cases(suites["gone:1"])["resolve"]
    assert error.tag == "error"
    assert "manifest unknown" in error.get("message", "")


def test_junit_is_well_formed_whatever_an_image_says() -> None:
    item = checked()[0]
    finding = dataclasses.replace(item.findings[0], message="os \x1b[31mPRETTY\x00 & <b>")
    root = junit([dataclasses.replace(item, findings=(finding,))])
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "os \ufffd[31mPRETTY\ufffd & <b>"


# GitHub workflow commands


def test_escaping_follows_the_actions_toolkit() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("a:b,c") == "a:b,c"


def test_github_annotations_per_finding_at_the_from_line() -> None:
    lines = render("github", checked(), POLICIES).splitlines()
    alpine = [line for line in lines if "alpine:3.21" in line]
    assert alpine[0] == "DENY alpine:3.21 (linux/amd64)"
    assert alpine[1].startswith(
        '::error file=build/Dockerfile,line=4,title=distroguard no-musl/no-musl::container "alpine:3.21" uses'
    )
    assert alpine[2].startswith("::notice file=build/Dockerfile,line=4,title=distroguard audit-musl/musl::")
    assert any(line.startswith("::warning title=distroguard supported/distro::") for line in lines)
    assert "ALLOW debian:13 (linux/amd64)" in lines
    assert "::error title=distroguard::gone:1: registry r.example: manifest unknown" in lines


def test_github_annotations_cannot_be_broken_out_of() -> None:
    item = checked()[0]
    finding = dataclasses.replace(item.findings[0], message="bad\n::add-mask::x\r%0A")
    where = Location("dir,with:odd/Dockerfile", 2)
    (line,) = [
        line
        for line in render(
            "github", [dataclasses.replace(item, findings=(finding,), location=where)], []
        ).splitlines()
        if line.startswith("::")
    ]
    assert (
        line == "::error file=dir%2Cwith%3Aodd/Dockerfile,line=2,title=distroguard no-musl/no-musl::"
        "bad%0A::add-mask::x%0D%250A"
    )


def test_artifact_paths_are_relative_with_forward_slashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_path(Path("./docker/../Dockerfile")) == "Dockerfile"
    assert artifact_path(tmp_path / "app" / "Containerfile") == "app/Containerfile"
    assert artifact_path(Path("/elsewhere/Dockerfile")) == "/elsewhere/Dockerfile"


# audit


def audited() -> AuditResult:
    images = {image: found for image, found in IMAGES.items() if image != "gone:1"}
    summaries = {image: summarize(image, found, CATALOG, TODAY) for image, found in images.items()}
    workloads = [
        AuditedWorkload(
            WorkloadRef("shop", "Deployment", "web"),
            "pods",
            (Container("app", "debian:13", "containers"), Container("sidecar", "alpine:3.21", "containers")),
            2,
        ),
        AuditedWorkload(
            WorkloadRef("shop", "CronJob", "nightly"),
            "template",
            (Container("job", "debian:12", "containers"),),
        ),
    ]
    results = audit_workloads(
        workloads,
        {(w.ref, c.image): summaries[c.image] for w in workloads for c in w.containers},
        POLICIES,
        CATALOG,
        NOW,
        {},
    )
    return AuditResult(NOW, "test", "shop", tuple(p.name for p in POLICIES), CATALOG.snapshot, results)


def test_audit_reports_group_by_workload() -> None:
    log = json.loads(audit_report("sarif", audited(), POLICIES))
    SARIF.validate(log)
    by_rule = {(r["ruleId"], r["properties"]["subject"]): r["level"] for r in log["runs"][0]["results"]}
    assert by_rule == {
        ("no-musl/no-musl", "container sidecar (alpine:3.21)"): "error",
        ("audit-musl/musl", "container sidecar (alpine:3.21)"): "note",
        ("supported/distro", "container job (debian:12)"): "warning",
    }
    names = [
        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in log["runs"][0]["results"]
    ]
    assert names[0] == "Deployment shop/web: container sidecar (alpine:3.21)"

    root = ET.fromstring(audit_report("junit", audited(), POLICIES).encode())
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["Deployment shop/web", "CronJob shop/nightly"]
    assert counts(suites["Deployment shop/web"]) == {"tests": 8, "failures": 1, "errors": 0, "skipped": 2}

    lines = audit_report("github", audited(), POLICIES).splitlines()
    assert "DENY Deployment shop/web: container sidecar (alpine:3.21)" in lines
    assert any(
        line.startswith('::error title=distroguard no-musl/no-musl::Deployment shop/web: container "sidecar"')
        for line in lines
    )
