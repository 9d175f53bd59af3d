"""`evaluate`: which policies cover which containers, how verdicts combine, and purity."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from distroguard.model import DistroPolicy
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policy.images import image_matches, parse_image
from support.lifecycles import NOW, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

CATALOG = make_catalog(product("debian", "Debian", cycle("12", eol=days(-1)), cycle("13", eol=days(900))))
MUSL = facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5")
GLIBC = facts("debian", "13")
NO_MUSL = {"name": "no-musl", "denyLibc": ["musl"]}
# The module, which the package's `evaluate` (the function) hides.
evaluation = importlib.import_module("distroguard.policy.evaluate")


def decide(
    containers: list[ContainerImage], policies: list[DistroPolicy], **context: Any
) -> tuple[str, list[tuple[str, str, str, str]]]:
    decision = evaluate(containers, policies, EvaluationContext(now=NOW, **context), CATALOG)
    return decision.verdict, [(f.policy, f.rule, f.container, f.action) for f in decision.findings]


def test_no_policies_allow() -> None:
    assert decide([ContainerImage("app", "alpine:3", MUSL)], []) == ("allow", [])


def test_strictest_action_wins_and_every_finding_is_kept() -> None:
    policies = [
        policy("audit-musl", NO_MUSL, action="audit"),
        policy("warn-musl", NO_MUSL, action="warn"),
        policy("deny-musl", NO_MUSL, action="deny"),
    ]
    verdict, findings = decide([ContainerImage("app", "alpine:3", MUSL)], policies)
    assert verdict == "deny"
    assert findings == [
        ("audit-musl", "no-musl", "app", "audit"),
        ("warn-musl", "no-musl", "app", "warn"),
        ("deny-musl", "no-musl", "app", "deny"),
    ]


def test_warn_without_deny_warns_and_audit_alone_allows() -> None:
    container = [ContainerImage("app", "alpine:3", MUSL)]
    assert decide(container, [policy("w", NO_MUSL, action="warn")])[0] == "warn"
    assert decide(container, [policy("a", NO_MUSL, action="audit")])[0] == "allow"


def test_verdict_per_container() -> None:
    decision = evaluate(
        [
            ContainerImage("init", "alpine:3", MUSL),
            ContainerImage("app", "debian:13", GLIBC),
            ContainerImage("sidecar", "ghcr.io/x/y:1", None, "registry unavailable"),
        ],
        [policy("p", NO_MUSL, onUnresolved="warn")],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    assert [(c.container, c.verdict) for c in decision.containers] == [
        ("init", "deny"),
        ("app", "allow"),
        ("sidecar", "warn"),
    ]
    assert decision.verdict == "deny"
    assert not decision.allowed
    assert decision.messages("warn") == [
        'container "sidecar" uses ghcr.io/x/y:1 (facts unknown): its image could not be inspected '
        "(registry unavailable); policy p warns about images it cannot inspect (onUnresolved: warn)"
    ]


@pytest.mark.parametrize(
    ("on_unresolved", "action", "verdict"),
    [("allow", "audit", "allow"), ("warn", "warn", "warn"), ("deny", "deny", "deny")],
)
def test_unresolved_follows_on_unresolved(on_unresolved: str, action: str, verdict: str) -> None:
    result = decide([ContainerImage("app", "x:1", None)], [policy("p", NO_MUSL, onUnresolved=on_unresolved)])
    assert result == (verdict, [("p", "onUnresolved", "app", action)])


@pytest.mark.parametrize(
    ("on_unresolved", "treated", "warned"),
    [("allow", "allows", True), ("warn", "warns about", True), ("deny", "denies", False)],
)
def test_an_image_admitted_uninspected_is_an_admission_warning(
    on_unresolved: str, treated: str, warned: bool
) -> None:
    decision = evaluate(
        [ContainerImage("app", "x:1", None, "registry unavailable")],
        [policy("p", NO_MUSL, onUnresolved=on_unresolved)],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    message = (
        'container "app" uses x:1 (facts unknown): its image could not be inspected (registry unavailable); '
        f"policy p {treated} images it cannot inspect (onUnresolved: {on_unresolved})"
    )
    assert [f.message for f in decision.findings] == [message]
    assert [f.message for f in decision.warning_findings()] == ([message] if warned else [])


def test_an_unknown_fact_under_on_unresolved_allow_is_no_admission_warning() -> None:
    unknown_libc = facts("debian", "13", libc="unknown", libc_version=None)
    decision = evaluate(
        [ContainerImage("app", "x:1", unknown_libc)],
        [policy("p", NO_MUSL, onUnresolved="allow")],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    assert [(f.action, f.reason) for f in decision.findings] == [("audit", "libc-unknown")]
    assert (decision.verdict, decision.warning_findings()) == ("allow", [])


def test_braces_in_what_images_and_registries_say_are_text() -> None:
    # An error body or an os-release name is not a format string: evaluating never fails on it.
    odd_os = facts("acme", "1", pretty="Acme {0} Linux {x}")
    decision = evaluate(
        [
            ContainerImage("app", "x:1", None, 'HTTP 401 {"errors": [{"code": "UNAUTHORIZED"}]}'),
            ContainerImage("odd", "y:1", odd_os),
        ],
        [policy("p", NO_MUSL, {"name": "known", "requireKnownOS": {}}, {"name": "s", "support": {}})],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    unresolved, *odd = decision.findings
    assert '(HTTP 401 {"errors": [{"code": "UNAUTHORIZED"}]}); policy p warns about' in unresolved.message
    assert odd
    assert all("Acme {0} Linux {x} is unknown" in f.message for f in odd)


def test_an_unresolved_reason_nobody_gave_is_said_to_be_unknown() -> None:
    decision = evaluate(
        [ContainerImage("app", "x:1", None)], [policy("p", NO_MUSL)], EvaluationContext(now=NOW), CATALOG
    )
    assert "its image could not be inspected (reason unknown); policy p warns about" in (
        decision.findings[0].message
    )


SCOPED: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("empty match: everything", {}, {"namespace": "team-a"}, True),
    ("namespace listed", {"match": {"namespaces": ["team-a"]}}, {"namespace": "team-a"}, True),
    ("namespace glob", {"match": {"namespaces": ["team-*"]}}, {"namespace": "team-b"}, True),
    ("namespace not listed", {"match": {"namespaces": ["team-a"]}}, {"namespace": "other"}, False),
    ("CLI: namespace match holds", {"match": {"namespaces": ["team-a"]}}, {}, True),
    (
        "excluded namespace",
        {"exclude": {"namespaces": ["kube-system"]}},
        {"namespace": "kube-system"},
        False,
    ),
    (
        "CLI: namespace exclusion does not exclude",
        {"exclude": {"namespaces": ["kube-system"]}},
        {},
        True,
    ),
    (
        "namespace labels",
        {"match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}},
        {"namespace": "a", "namespace_labels": {"env": "prod"}},
        True,
    ),
    (
        "namespace labels differ",
        {"match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}},
        {"namespace": "a", "namespace_labels": {"env": "dev"}},
        False,
    ),
    (
        "expression In",
        {
            "match": {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]
                }
            }
        },
        {"namespace": "a", "namespace_labels": {"tier": "api"}},
        True,
    ),
    (
        "expression NotIn",
        {
            "match": {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]
                }
            }
        },
        {"namespace": "a", "namespace_labels": {"tier": "batch"}},
        False,
    ),
    (
        "expression Exists",
        {"match": {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}},
        {"namespace": "a", "namespace_labels": {}},
        False,
    ),
    (
        "expression DoesNotExist",
        {
            "exclude": {
                "namespaceSelector": {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]}
            }
        },
        {"namespace": "a", "namespace_labels": {"legacy": "yes"}},
        True,
    ),
    ("kind listed", {"match": {"kinds": ["Deployment"]}}, {"kind": "deployment"}, True),
    ("kind not listed", {"match": {"kinds": ["Deployment"]}}, {"kind": "CronJob"}, False),
    ("image glob on normalised name", {"match": {"images": ["docker.io/library/*"]}}, {}, True),
    ("image glob elsewhere", {"match": {"images": ["*.example.com/*"]}}, {}, False),
    ("image excluded", {"exclude": {"images": ["alpine:*"]}}, {}, False),
    (
        "exclude needs every criterion",
        {"exclude": {"namespaces": ["team-a"], "images": ["ghcr.io/*"]}},
        {"namespace": "team-a"},
        True,
    ),
    ("runtime match", {"match": {"runtimes": ["python"]}}, {}, False),
    ("runtime excluded", {"exclude": {"runtimes": ["python"]}}, {}, True),
    ("CLI: kind exclusion does not exclude", {"exclude": {"kinds": ["Deployment"]}}, {}, True),
    ("kind excluded", {"exclude": {"kinds": ["deployment"]}}, {"kind": "Deployment"}, False),
    (
        "CLI: namespace label exclusion does not exclude",
        {"exclude": {"namespaceSelector": {"matchLabels": {"env": "dev"}}}},
        {},
        True,
    ),
    (
        "match needs every criterion",
        {"match": {"kinds": ["Deployment"], "images": ["ghcr.io/*"]}},
        {"kind": "Deployment"},
        False,
    ),
    (
        "match and exclude",
        {"match": {"kinds": ["Deployment"], "images": ["alpine:*"]}, "exclude": {"namespaces": ["dev-*"]}},
        {"kind": "Deployment", "namespace": "prod"},
        True,
    ),
    (
        "matched, then excluded",
        {"match": {"kinds": ["Deployment"], "images": ["alpine:*"]}, "exclude": {"namespaces": ["dev-*"]}},
        {"kind": "Deployment", "namespace": "dev-1"},
        False,
    ),
]


@pytest.mark.parametrize(("spec", "context", "covered"), [s[1:] for s in SCOPED], ids=[s[0] for s in SCOPED])
def test_match_and_exclude(spec: dict[str, Any], context: dict[str, Any], covered: bool) -> None:
    verdict, _ = decide(
        [ContainerImage("app", "alpine:3.21", MUSL)], [policy("p", NO_MUSL, **spec)], **context
    )
    assert verdict == ("deny" if covered else "allow")


def test_runtime_criterion_uses_the_facts() -> None:
    python = facts("alpine", "3.21.0", libc="musl", runtimes=(("python", "3.12.1"),))
    python_only = policy("p", NO_MUSL, match={"runtimes": ["python"]})
    containers = [
        ContainerImage("py", "python:3.12-alpine", python),
        ContainerImage("other", "alpine:3", MUSL),
    ]
    assert decide(containers, [python_only])[1] == [("p", "no-musl", "py", "deny")]
    # Unknown facts: the policy still applies (onUnresolved), it does not silently skip the image.
    assert decide([ContainerImage("x", "x:1", None)], [python_only])[1] == [
        ("p", "onUnresolved", "x", "warn")
    ]
    # Nor does an exclusion by runtime skip it.
    not_python = policy("p", NO_MUSL, exclude={"runtimes": ["python"]})
    assert decide([ContainerImage("x", "x:1", None)], [not_python])[1] == [("p", "onUnresolved", "x", "warn")]


def test_what_is_worked_out_once_per_policy_is_never_taken_for_another_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    containers = [ContainerImage("app", "alpine:3", MUSL)]
    elsewhere = policy("p", NO_MUSL, match={"namespaces": ["elsewhere"]})
    here = policy("p", NO_MUSL, match={"namespaces": ["here"]})
    assert decide(containers, [elsewhere], namespace="here")[0] == "allow"
    # An id is reused once its object is gone: let `here` find the plan kept under its id for `elsewhere`.
    monkeypatch.setitem(evaluation._PLANS, id(here), evaluation._PLANS[id(elsewhere)])
    assert decide(containers, [here], namespace="here")[0] == "deny"
    assert decide(containers, [elsewhere], namespace="here")[0] == "allow"


@pytest.mark.parametrize(
    ("reference", "full", "official"),
    [
        ("python:3.12", "docker.io/library/python:3.12", "python"),
        ("library/python", "docker.io/library/python", "python"),
        ("index.docker.io/library/node:22", "docker.io/library/node:22", "node"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7", None),
        ("ghcr.io/acme/app:1.0", "ghcr.io/acme/app:1.0", None),
        ("localhost:5000/app", "localhost:5000/app", None),
        (
            "registry.example.com:5000/team/app@sha256:abc",
            "registry.example.com:5000/team/app@sha256:abc",
            None,
        ),
    ],
)
def test_image_names(reference: str, full: str, official: str | None) -> None:
    image = parse_image(reference)
    assert image.full == full
    assert image.official == official


def test_image_globs() -> None:
    assert image_matches(("docker.io/library/*",), "python:3.12-slim")
    assert image_matches(("*.example.com/team/*",), "registry.example.com/team/app:1")
    assert image_matches(("ghcr.io/acme/app",), "ghcr.io/acme/app:1.0")
    assert not image_matches(("docker.io/library/*",), "ghcr.io/acme/app:1.0")


def test_evaluation_is_deterministic_and_pure() -> None:
    containers = [
        ContainerImage("a", "alpine:3", MUSL),
        ContainerImage("b", "debian:12", facts("debian", "12")),
    ]
    policies = [policy("p", NO_MUSL, {"name": "eol", "support": {}})]
    first = evaluate(containers, policies, EvaluationContext(now=NOW), CATALOG)
    second = evaluate(containers, policies, EvaluationContext(now=NOW), CATALOG)
    assert first == second
    assert [f.reason for f in first.findings] == ["libc-denied", "lifecycle-unknown", "eol"]


def test_naive_and_aware_clocks_agree_on_the_day() -> None:
    assert EvaluationContext(now=NOW).today == EvaluationContext(now=NOW.replace(tzinfo=None)).today
