"""The ready-made policies in `policies/`: each loads, documents itself, and decides as it says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import DistroPolicy, ImageFacts
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policyfiles import load_policies
from support.lifecycles import facts

POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"
# The bundled snapshot's day: the catalog's dates are what they were then.
CONTEXT = EvaluationContext(now=datetime(2026, 8, 22, 12, tzinfo=UTC))
CATALOG = EolCatalog(bundled_snapshot())

IMAGES: dict[str, ImageFacts] = {
    "python:3.13-slim-trixie": facts(
        "debian", "13", codename="trixie", libc_version="2.41", runtimes=(("python", "3.13.5"),)
    ),
    "python:3.7-alpine": facts(
        "alpine", "3.9.6", libc="musl", libc_version="1.1.20", runtimes=(("python", "3.7.17"),)
    ),
    "python:3.12-slim-bookworm": facts(
        "debian", "12", codename="bookworm", runtimes=(("python", "3.12.11"),)
    ),
    "python:3.11-slim-bullseye": facts(
        "debian", "11", codename="bullseye", libc_version="2.31", runtimes=(("python", "3.11.9"),)
    ),
    "node:18-buster": facts(
        "debian", "10", codename="buster", libc_version="2.28", runtimes=(("nodejs", "18.20.4"),)
    ),
    "ubuntu:25.04": facts("ubuntu", "25.04", codename="plucky", libc_version="2.41"),
    "fedora:44": facts("fedora", "44", libc_version="2.43"),
    "cgr.dev/chainguard/python:latest": facts("wolfi", "20230201", runtimes=(("python", "3.13.5"),)),
    "gcr.io/distroless/static-debian12": facts(
        "debian", "12", pretty="Distroless", libc="none", libc_version=None
    ),
}

EXPECTED: dict[str, dict[str, list[str]]] = {
    # policy -> image -> reasons of its findings (absent image: no finding)
    "no-musl": {"python:3.7-alpine": ["libc-denied"]},
    "no-eol-distro": {
        "python:3.7-alpine": ["eol"],
        "python:3.12-slim-bookworm": ["extended-support"],
        "python:3.11-slim-bullseye": ["eol-soon"],
        "node:18-buster": ["eol"],
        "ubuntu:25.04": ["eol"],
        "gcr.io/distroless/static-debian12": ["extended-support"],
    },
    "lts-only": {"ubuntu:25.04": ["not-lts"], "fedora:44": ["not-lts"]},
    "supported-runtimes": {"python:3.7-alpine": ["runtime-eol"], "node:18-buster": ["runtime-eol"]},
    "python-base-images": {
        "python:3.7-alpine": ["libc-denied", "glibc-required", "eol", "runtime-eol"],
        "python:3.12-slim-bookworm": ["eol"],
        "python:3.11-slim-bullseye": ["eol"],
    },
}


@pytest.fixture(scope="module")
def policies() -> dict[str, DistroPolicy]:
    return {p.name: p for p in load_policies([POLICIES])}


def test_every_ready_made_policy_is_there(policies: dict[str, DistroPolicy]) -> None:
    assert sorted(policies) == sorted(EXPECTED)
    assert sorted(f.stem for f in POLICIES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_each_file_starts_with_a_comment_block_and_denies(path: Path) -> None:
    text = path.read_text()
    assert text.startswith(f"# {path.stem}: ")
    assert "Why:" in text
    assert "  action: deny\n" in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_policy_decides_as_documented(policies: dict[str, DistroPolicy], name: str) -> None:
    containers = [
        ContainerImage("app", image, f.model_copy(update={"reference": image})) for image, f in IMAGES.items()
    ]
    decision = evaluate(containers, [policies[name]], CONTEXT, CATALOG)
    found: dict[str, list[str]] = {}
    for finding in decision.findings:
        found.setdefault(finding.image, []).append(finding.reason)
    assert found == EXPECTED[name]
    for finding in decision.findings:
        assert finding.message.startswith(f'container "app" uses {finding.image} (')
