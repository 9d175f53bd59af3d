"""Which scan mode the policies in force ask for: `runtimes` when one judges runtimes."""

from __future__ import annotations

from pathlib import Path

import pytest

from distroguard.model import DistroPolicy
from distroguard.policy.scanning import judges_runtimes, scan_mode
from distroguard.policyfiles import load_policies

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def shipped(name: str) -> DistroPolicy:
    (policy,) = load_policies([POLICIES / f"{name}.yaml"])
    return policy


@pytest.mark.parametrize(
    ("name", "judges"),
    [("no-musl", False), ("no-eol-distro", False), ("lts-only", False), ("supported-runtimes", True)],
)
def test_the_shipped_policies(name: str, judges: bool) -> None:
    assert judges_runtimes(shipped(name)) is judges


def test_fast_becomes_runtimes_only_when_a_policy_judges_runtimes() -> None:
    assert scan_mode([shipped("no-musl")]) == "fast"
    assert scan_mode([shipped("no-musl"), shipped("supported-runtimes")]) == "runtimes"
    assert scan_mode([shipped("supported-runtimes")], "thorough") == "thorough"
    assert scan_mode([]) == "fast"


def test_a_match_on_runtimes_asks_for_them_too() -> None:
    policy = shipped("no-musl")
    spec = policy.spec.model_copy(
        update={"match": policy.spec.match.model_copy(update={"runtimes": ("python",)})}
    )
    assert judges_runtimes(policy.model_copy(update={"spec": spec}))
