"""The DistroPolicy model: what is accepted, and what each invalid policy is told."""

from __future__ import annotations

from typing import Any

import pytest

from distroguard.errors import InvalidPolicy
from distroguard.model.policy import DistroSelector, parse_quantity
from distroguard.model.validation import parse_policy
from support.policies import document, policy


def test_every_rule_kind_parses_with_defaults() -> None:
    parsed = policy(
        "all-kinds",
        {"name": "allow", "allowDistros": [{"id": "debian", "minVersion": "12"}, "ubuntu"]},
        {"name": "deny", "denyDistros": ["alpine", {"id": "ubuntu", "versions": ["23.10"]}]},
        {"name": "libc", "denyLibc": ["musl"], "action": "warn"},
        {"name": "glibc", "minGlibc": "2.28"},
        {"name": "support", "support": {"warnDaysBefore": 90, "graceDays": 7}},
        {"name": "lts", "requireLTS": {}},
        {"name": "runtimes", "runtimes": {"names": ["python"], "minVersions": {"python": "3.11"}}},
        {"name": "known-os", "requireKnownOS": {"allowStatic": True}},
        {"name": "size", "maxImageSize": "500Mi"},
        onUnresolved="deny",
    )
    spec = parsed.spec
    assert parsed.name == "all-kinds"
    assert spec.action == "deny"
    assert spec.on_unresolved == "deny"
    assert [rule.kind for rule in spec.rules] == [
        "allowDistros",
        "denyDistros",
        "denyLibc",
        "minGlibc",
        "support",
        "requireLTS",
        "runtimes",
        "requireKnownOS",
        "maxImageSize",
    ]
    allow = spec.rules[0].allow_distros
    assert allow is not None
    assert allow[1] == DistroSelector(id="ubuntu")
    assert spec.rules[4].support is not None
    assert spec.rules[4].support.grace_days == 7
    assert spec.rules[5].require_lts is not None
    assert spec.rules[5].require_lts.allow_rolling is True
    assert spec.rules[8].max_image_bytes == 500 * 2**20


def test_defaults_when_spec_says_little() -> None:
    spec = policy("minimal", {"name": "no-musl", "denyLibc": ["musl"]}).spec
    assert (spec.action, spec.on_unresolved) == ("deny", "warn")
    assert spec.match.is_empty
    assert spec.exclude.is_empty


def test_round_trip_through_aliases() -> None:
    parsed = policy("round", {"name": "s", "support": {"countExtendedSupport": True}})
    dumped = parsed.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["rules"][0]["support"]["countExtendedSupport"] is True
    assert parse_policy(dumped, "again") == parsed


def test_metadata_from_the_api_server_is_ignored() -> None:
    data = document("from-cluster", {"name": "no-musl", "denyLibc": ["musl"]})
    data["metadata"].update(uid="1234", resourceVersion="5", managedFields=[{"manager": "kubectl"}])
    assert parse_policy(data, "cluster").name == "from-cluster"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("500Mi", 500 * 2**20),
        ("1Gi", 2**30),
        ("200M", 200_000_000),
        ("1.5Gi", 3 * 2**29),
    ],
)
def test_quantities(value: int | str, size: int) -> None:
    assert parse_quantity(value) == size


RULE = {"name": "r", "denyLibc": ["musl"]}

INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "bad action",
        document("p", RULE, action="block"),
        ["spec.action: Input should be 'deny', 'warn' or 'audit' (got 'block')"],
    ),
    (
        "bad onUnresolved",
        document("p", RULE, onUnresolved="ignore"),
        ["spec.onUnresolved: Input should be 'allow', 'warn' or 'deny' (got 'ignore')"],
    ),
    (
        "unknown spec field, with a hint",
        document("p", RULE, actions="deny"),
        [
            "spec.actions: unknown field (did you mean action?); allowed here: action, "
            "onUnresolved, onNoPlatform, controlledPods, match, exclude, rules"
        ],
    ),
    (
        "unknown rule field",
        document("p", {"name": "r", "denyLibc": ["musl"], "severity": "high"}),
        [
            "spec.rules[0] (r).severity: unknown field; allowed here: name, action, message, "
            "allowDistros, denyDistros, denyLibc, minGlibc, support, requireLTS, runtimes, "
            "requireKnownOS, maxImageSize"
        ],
    ),
    (
        "snake_case is not the wire format",
        document("p", {"name": "s", "support": {"warn_days_before": 3}}),
        [
            "spec.rules[0] (s).support.warn_days_before: unknown field "
            "(did you mean warnDaysBefore?); allowed here: requireActive, countExtendedSupport, "
            "warnDaysBefore, graceDays"
        ],
    ),
    (
        "two kinds in one rule",
        document("p", {"name": "two", "denyLibc": ["musl"], "minGlibc": "2.28"}),
        [
            "spec.rules[0] (two): rule 'two' must set exactly one of allowDistros, denyDistros, "
            "denyLibc, minGlibc, support, requireLTS, runtimes, requireKnownOS, maxImageSize "
            "(it sets denyLibc, minGlibc)"
        ],
    ),
    (
        "no kind",
        document("p", {"name": "none"}),
        [
            "spec.rules[0] (none): rule 'none' must set exactly one of allowDistros, denyDistros, "
            "denyLibc, minGlibc, support, requireLTS, runtimes, requireKnownOS, maxImageSize "
            "(it sets none)"
        ],
    ),
    (
        "bad libc",
        document("p", {"name": "r", "denyLibc": ["uclibc"]}),
        ["spec.rules[0] (r).denyLibc[0]: Input should be 'glibc', 'musl' or 'none' (got 'uclibc')"],
    ),
    (
        "unquoted version",
        document("p", {"name": "r", "allowDistros": [{"id": "ubuntu", "versions": [22.10]}]}),
        [
            "spec.rules[0] (r).allowDistros[0].versions[0]: expected text, got the number 22.1: "
            'quote versions in YAML, e.g. "22.04" (unquoted, 22.10 reads as the number 22.1)'
        ],
    ),
    (
        "not a version",
        document("p", {"name": "r", "minGlibc": "latest"}),
        [
            "spec.rules[0] (r).minGlibc: 'latest' is not a version: expected numbers separated by "
            "dots, e.g. '12' or '2.28'"
        ],
    ),
    (
        "bad distro item",
        document("p", {"name": "r", "denyDistros": [3]}),
        [
            "spec.rules[0] (r).denyDistros[0]: expected a distribution ID such as 'alpine', "
            "or {id, versions, minVersion, maxVersion}"
        ],
    ),
    (
        "bad size",
        document("p", {"name": "r", "maxImageSize": "5 gigs"}),
        [
            "spec.rules[0] (r).maxImageSize: '5 gigs' is not a size: use bytes or a number with "
            "Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal), e.g. '500Mi'"
        ],
    ),
    (
        "negative days",
        document("p", {"name": "s", "support": {"warnDaysBefore": -1}}),
        [
            "spec.rules[0] (s).support.warnDaysBefore: Input should be greater than or equal to 0",
        ],
    ),
    (
        "unknown placeholder",
        document("p", {"name": "r", "denyLibc": ["musl"], "message": "{image} uses {libc}"}),
        [
            "spec.rules[0] (r).message: unknown placeholder {libc} in message; allowed: "
            "{container}, {image}, {facts}, {problem}, {policy}, {rule}, {action}, {suggestion}"
        ],
    ),
    (
        "rule name",
        document("p", {"name": "No_Musl", "denyLibc": ["musl"]}),
        [
            "spec.rules[0] (No_Musl).name: rule name 'No_Musl' must be 1-63 lowercase letters, "
            "digits or '-', starting and ending with a letter or digit (like a Kubernetes name)"
        ],
    ),
    (
        "duplicate rule names",
        document("p", RULE, RULE),
        ["spec.rules: rule name 'r' is used twice; rule names must be unique"],
    ),
    ("no rules", document("p"), ["spec.rules: needs at least 1 entry"]),
    (
        "selector operator needs values",
        document(
            "p",
            RULE,
            match={"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}},
        ),
        ["spec.match.namespaceSelector.matchExpressions[0]: operator In needs at least one value"],
    ),
    (
        "wrong kind and version",
        {**document("p", RULE), "apiVersion": "v1", "kind": "ConfigMap"},
        [
            "apiVersion: Input should be 'distroguard.dev/v1alpha1' (got 'v1')",
            "kind: Input should be 'DistroPolicy' (got 'ConfigMap')",
        ],
    ),
    (
        "missing metadata name",
        {**document("p", RULE), "metadata": {}},
        ["metadata.name: required field is missing"],
    ),
]


@pytest.mark.parametrize(
    ("data", "problems"), [(d, p) for _, d, p in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_policies_name_the_field_and_what_is_allowed(
    data: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(data, "policies/p.yaml")
    assert caught.value.problems == problems
    assert str(caught.value).startswith("invalid policy in policies/p.yaml:\n  ")
    assert caught.value.reason == "invalid-policy"


def test_a_policy_must_be_a_mapping() -> None:
    with pytest.raises(InvalidPolicy, match="expected a DistroPolicy object, got list"):
        parse_policy(["not", "a", "policy"], "x.yaml")
