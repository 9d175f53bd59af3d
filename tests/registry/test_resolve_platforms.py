"""`Resolver.resolve_platforms` against a real registry: each platform's facts cached under its own
manifest, the index read once, attestations never judged, at most 16 platforms judged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from distroguard.model import Platform
from distroguard.model.platform import MAX_PLATFORMS
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support import multiarch
from support.images import push
from support.proxy import CountingProxy
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


async def test_a_second_platform_reads_no_index(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    index = multiarch.with_attestations()
    await push(registry.url, repo, "mixed", index)
    proxy = await make_proxy(registry.url)
    image = f"{proxy.address}/{repo}:mixed"
    async with RegistryClient() as client:
        resolver = Resolver(client)
        first = await resolver.resolve_platforms(image, [AMD64])
        manifests_after_first = proxy.count("GET", "manifests")
        second = await resolver.resolve_platforms(image, [ARM64])
        manifest_paths = [r.path for r in proxy.records if r.kind == "manifests" and r.method == "GET"]
        both = resolver.cached_platforms(image, [AMD64, ARM64])
    amd64, arm64 = index.images
    assert first.offered == second.offered == ("linux/amd64", "linux/arm64")
    assert [f.platform for f in first.facts] == ["linux/amd64"]
    assert first.facts[0].manifest_digest == amd64.digest
    assert (second.facts[0].os.id if second.facts[0].os else None) == "alpine"
    # The second platform: its own manifest only, the index came from the cache.
    assert manifests_after_first == 2
    assert manifest_paths[2:] == [f"/v2/{repo}/manifests/{arm64.digest}"]
    assert both is not None
    assert [f.manifest_digest for f in both.facts] == [amd64.digest, arm64.digest]
    # Each platform's bytes are its own: manifest, config, base layer (not the index, not amd64's).
    base = arm64.layers[0].size
    assert second.facts[0].bytes_fetched == len(arm64.manifest) + len(arm64.config) + base
    assert resolver.cache.facts.peek((arm64.digest, "linux/arm64", "fast")) is not None


async def test_all_platforms_are_bounded_and_a_single_image_is_judged_on_its_own(
    registry: RegistryServer, repo: str
) -> None:
    await push(registry.url, repo, "many", multiarch.many_platforms(MAX_PLATFORMS + 2))
    lone = multiarch.alpine("linux/arm64")
    await push(registry.url, repo, "lone", lone)
    async with RegistryClient() as client:
        resolver = Resolver(client)
        many = await resolver.resolve_platforms(f"{registry.address}/{repo}:many")
        single = await resolver.resolve_platforms(f"{registry.address}/{repo}:lone", [AMD64])
        none = await resolver.resolve_platforms(
            f"{registry.address}/{repo}:many", [Platform.parse("linux/s390x")]
        )
    assert len(many.offered) == len(many.facts) == MAX_PLATFORMS
    assert many.offered[0] == "linux/amd64"
    assert (single.single, single.offered, [f.platform for f in single.facts]) == (
        True,
        ("linux/arm64",),
        ["linux/arm64"],
    )
    assert (none.facts, len(none.offered)) == ((), MAX_PLATFORMS)
