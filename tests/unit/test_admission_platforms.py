"""`admit` judging each image on the platforms that matter: multi-architecture indexes in `oci:` layouts, a
real Resolver, the shipped no-musl policy, the cluster's platforms from `AdmissionCluster.platforms`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from distroguard.admission import AdmissionAnswer, admit, decode_review
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import DistroPolicy
from distroguard.policyfiles import load_policies
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support import multiarch
from support.admission import StaticCluster
from support.images import write_oci_layout
from support.lifecycles import NOW
from support.reviews import container, pod_spec, review, workload

POLICIES = Path(__file__).parents[2] / "policies"
CATALOG = EolCatalog(bundled_snapshot())


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("multiarch")
    built = {
        "mixed": multiarch.with_attestations(),
        "arm64-only": multiarch.arm64_only(),
        "arm64-and-s390x": multiarch.build_index(
            [multiarch.debian("linux/arm64"), multiarch.debian("linux/s390x")]
        ),
        "lone-arm64": multiarch.alpine("linux/arm64"),
        "alpine-both": multiarch.build_index(
            [multiarch.alpine("linux/amd64"), multiarch.alpine("linux/arm64")]
        ),
        "debian-both": multiarch.build_index(
            [multiarch.debian("linux/amd64"), multiarch.debian("linux/arm64")]
        ),
    }
    return {name: f"oci:{write_oci_layout(root / name, image)}" for name, image in built.items()}


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        yield resolver
        await resolver.drain()


def no_musl(on_no_platform: str | None = None) -> list[DistroPolicy]:
    (policy,) = load_policies([POLICIES / "no-musl.yaml"])
    spec: dict[str, Any] = {"action": "deny"}
    if on_no_platform is not None:
        spec["on_no_platform"] = on_no_platform
    return [policy.model_copy(update={"spec": policy.spec.model_copy(update=spec)})]


def pod(image: str, **spec: Any) -> dict[str, Any]:
    body = pod_spec(container("app", image))
    body.update(spec)
    return review(workload("Pod", body))


async def decide(
    document: dict[str, Any], cluster: StaticCluster, policies: list[DistroPolicy]
) -> AdmissionAnswer:
    return await admit(
        decode_review(document), cluster, policies, CATALOG, budget=10.0, now=NOW, local_images=True
    )


async def test_the_mixed_image_is_judged_on_the_clusters_platforms(
    images: dict[str, str], resolver: Resolver
) -> None:
    amd64_only = StaticCluster(resolver, platforms=["linux/amd64"])
    assert (await decide(pod(images["mixed"]), amd64_only, no_musl())).allowed
    # An arm64 node joins: the next review judges the arm64 variant too, and the worst verdict wins.
    amd64_only.nodes = StaticCluster(resolver, platforms=["linux/amd64", "linux/arm64"]).nodes
    denied = await decide(pod(images["mixed"]), amd64_only, no_musl())
    assert not denied.allowed
    assert f'container "app" uses {images["mixed"]} (linux/arm64: ' in denied.message
    assert "musl" in denied.message
    assert "linux/amd64:" not in denied.message  # the amd64 variant passed: it has no finding
    assert denied.decision is not None
    assert [(c.container, c.verdict) for c in denied.decision.containers] == [("app", "deny")]


async def test_platforms_that_agree_are_not_named(images: dict[str, str], resolver: Resolver) -> None:
    both = StaticCluster(resolver, platforms=["linux/amd64", "linux/arm64"])
    answer = await decide(pod(images["alpine-both"]), both, no_musl())
    assert not answer.allowed
    # Both platforms denied for the same reason: said once, naming neither.
    assert answer.message.count("musl is not allowed") == 1
    assert "linux/" not in answer.message
    clean = await decide(pod(images["debian-both"]), both, no_musl())
    assert clean.allowed
    assert not clean.warnings


async def test_an_arch_pinned_pod_is_judged_on_that_architecture_alone(
    images: dict[str, str], resolver: Resolver
) -> None:
    both = StaticCluster(resolver, platforms=["linux/amd64", "linux/arm64"])
    on_amd64 = pod(images["mixed"], nodeSelector={"kubernetes.io/arch": "amd64"})
    assert (await decide(on_amd64, both, no_musl())).allowed
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}
                        ]
                    }
                ]
            }
        }
    }
    pinned = await decide(pod(images["mixed"], affinity=affinity), both, no_musl())
    assert not pinned.allowed
    assert "musl" in pinned.message


async def test_an_image_offering_no_cluster_platform_is_a_finding_of_its_own(
    images: dict[str, str], resolver: Resolver
) -> None:
    amd64_only = StaticCluster(resolver, platforms=["linux/amd64"])
    warned = await decide(pod(images["arm64-and-s390x"]), amd64_only, no_musl())
    assert warned.allowed  # onNoPlatform: warn, the default
    (warning,) = warned.warnings
    assert "image offers only linux/arm64, linux/s390x; the cluster's nodes are linux/amd64" in warning
    assert warned.decision is not None
    (finding,) = warned.decision.findings
    assert (finding.rule, finding.action) == ("onNoPlatform", "warn")
    assert finding.message.endswith("(onNoPlatform: warn)")
    denied = await decide(pod(images["arm64-and-s390x"]), amd64_only, no_musl(on_no_platform="deny"))
    assert not denied.allowed
    assert "image offers only linux/arm64, linux/s390x" in denied.message
    # A single-platform image is judged on its one platform besides: its musl is denied as well.
    lone = await decide(pod(images["lone-arm64"]), amd64_only, no_musl())
    assert not lone.allowed
    assert "musl" in lone.message
    assert any("image offers only linux/arm64" in w for w in lone.warnings)
