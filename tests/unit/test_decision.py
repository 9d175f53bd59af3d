"""`Decision` and `ContainerVerdict`: built with their own `__init__`, still frozen dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from distroguard.model import ContainerVerdict, Decision, Finding

FINDING = Finding(
    policy="p",
    rule="onUnresolved",
    action="audit",
    severity="low",
    reason="unresolved",
    message="m",
    container="app",
    image="x:1",
)


def test_positional_keyword_and_default_arguments_build_the_same_value() -> None:
    by_keyword = ContainerVerdict(container="app", image="x:1", verdict="warn", digest=None)
    assert ContainerVerdict("app", "x:1", "warn") == by_keyword
    assert hash(ContainerVerdict("app", "x:1", "warn")) == hash(by_keyword)
    assert ContainerVerdict("app", "x:1", "warn", "sha256:a") != by_keyword
    decision = Decision("warn", (by_keyword,), (FINDING,))
    assert decision == Decision(verdict="warn", containers=(by_keyword,), findings=(FINDING,))
    assert (Decision("allow").containers, Decision("allow").findings) == ((), ())
    assert repr(by_keyword) == "ContainerVerdict(container='app', image='x:1', verdict='warn', digest=None)"


def test_they_stay_frozen() -> None:
    verdict = ContainerVerdict("app", "x:1", "allow")
    decision = Decision("allow", (verdict,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.verdict = "deny"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.verdict = "deny"  # type: ignore[misc]
    assert dataclasses.replace(decision, verdict="deny") == Decision("deny", (verdict,))
    assert copy.deepcopy(decision) == decision
    assert pickle.loads(pickle.dumps(decision)) == decision


def test_json_form() -> None:
    decision = Decision("allow", (ContainerVerdict("app", "x:1", "allow", "sha256:a"),), (FINDING,))
    data = decision.to_json()
    assert data["verdict"] == "allow"
    assert data["containers"] == [
        {"container": "app", "image": "x:1", "verdict": "allow", "digest": "sha256:a"}
    ]
    assert data["findings"][0]["rule"] == "onUnresolved"
    assert data["findings"][0]["facts"] == {}


def test_warnings_are_warn_findings_and_images_admitted_uninspected() -> None:
    def finding(rule: str, action: str) -> Finding:
        return dataclasses.replace(FINDING, rule=rule, action=action, message=f"{rule} {action}")  # type: ignore[arg-type]

    findings = tuple(
        finding(rule, action) for rule in ("onUnresolved", "no-musl") for action in ("audit", "warn", "deny")
    )
    decision = Decision("deny", (), findings)
    assert [f.message for f in decision.warning_findings()] == [
        "onUnresolved audit",
        "onUnresolved warn",
        "no-musl warn",
    ]
    assert decision.messages("warn") == ["onUnresolved warn", "no-musl warn"]
