"""Tag → digest and manifests (OCI and Docker v2) from the real registry, verified and bounded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from distroguard.errors import DigestMismatch, NotFoundError, ScanLimitExceeded
from distroguard.registry import mediatypes as mt
from distroguard.registry.client import RegistryClient
from distroguard.registry.manifest import ByteMeter, ImageManifest, parse_manifest
from distroguard.registry.settings import RegistrySettings
from support.images import ImageBuilder, build_index, push
from support.proxy import CountingProxy, drop_after
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
OS_RELEASE = {"etc/os-release": "ID=debian\nVERSION_ID=12\n"}


@pytest.mark.parametrize(("format", "chunked"), [("oci", False), ("docker", True)])
async def test_tag_to_digest_and_manifest(
    registry: RegistryServer, repo: str, format: str, chunked: bool, make_proxy: MakeProxy
) -> None:
    image = ImageBuilder(format=format).layer(OS_RELEASE).build()  # type: ignore[arg-type]
    await push(registry.url, repo, "1.0", image, chunked=chunked)
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo, "1.0").model_copy(update={"registry": proxy.address})
    meter = ByteMeter()
    async with RegistryClient() as client:
        digest = await client.head_digest(ref, meter=meter)
        media_type, body, served = await client.get_manifest(ref, digest, meter=meter)
    assert digest == served == image.digest
    assert body == image.manifest
    assert media_type == (mt.OCI_MANIFEST if format == "oci" else mt.DOCKER_MANIFEST)
    manifest = parse_manifest(media_type, body)
    assert isinstance(manifest, ImageManifest)
    assert manifest.layers[0].digest == image.layers[0].digest
    assert [(r.method, r.kind) for r in proxy.records] == [
        ("HEAD", "manifests"),
        ("GET", "manifests"),
    ]
    assert meter.total == len(image.manifest)  # a HEAD has no body


async def test_head_without_digest_header_falls_back_to_get(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = ImageBuilder().layer(OS_RELEASE).build()
    await push(registry.url, repo, "1.0", image)

    async def headless(request: web.Request) -> web.StreamResponse | None:
        # A registry that answers HEAD without Docker-Content-Digest (some proxies strip it).
        return web.Response(status=200) if request.method == "HEAD" else None

    proxy = await make_proxy(registry.url, hooks=[headless])
    ref = registry.ref(repo, "1.0").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        assert await client.head_digest(ref) == image.digest
    assert [r.method for r in proxy.records] == ["HEAD", "GET"]


async def test_manifest_by_tag_and_index(registry: RegistryServer, repo: str) -> None:
    amd = ImageBuilder().layer(OS_RELEASE).build()
    arm = ImageBuilder(platform="linux/arm64/v8").layer(OS_RELEASE).build()
    index = build_index([amd, arm], format="docker")
    await push(registry.url, repo, "multi", index)
    async with RegistryClient() as client:
        media_type, body, digest = await client.get_manifest(registry.ref(repo, "multi"), "multi")
    assert (media_type, body, digest) == (mt.DOCKER_MANIFEST_LIST, index.body, index.digest)


async def test_pinned_reference_needs_no_request(registry: RegistryServer, repo: str) -> None:
    pinned = registry.ref(repo, None, digest="sha256:" + "a" * 64)
    async with RegistryClient() as client:
        assert await client.head_digest(pinned) == pinned.digest


async def test_unknown_tag_and_repository_are_not_found(registry: RegistryServer, repo: str) -> None:
    await push(registry.url, repo, "1.0", ImageBuilder().layer(OS_RELEASE).build())
    async with RegistryClient() as client:
        with pytest.raises(NotFoundError, match=rf"registry {registry.address}: .*:nope: not found"):
            await client.head_digest(registry.ref(repo, "nope"))
        with pytest.raises(NotFoundError, match=r"MANIFEST_UNKNOWN|NAME_UNKNOWN"):
            await client.get_manifest(registry.ref(f"{repo}-missing", "1.0"), "1.0")


async def test_manifest_fetched_by_a_wrong_digest_is_refused(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = ImageBuilder().layer(OS_RELEASE).build()
    other = ImageBuilder().layer({"etc/os-release": "ID=alpine\n"}).build()
    await push(registry.url, repo, "1.0", image)
    await push(registry.url, repo, "2.0", other)

    async def swap(request: web.Request) -> web.StreamResponse | None:
        # A lying registry (or a cache gone bad): asked for one digest, it serves the other
        # manifest.
        if request.path.endswith(image.digest):
            return web.Response(
                body=other.manifest,
                content_type=mt.OCI_MANIFEST,
                headers={"Docker-Content-Digest": image.digest},
            )
        return None

    proxy = await make_proxy(registry.url, hooks=[swap])
    ref = registry.ref(repo, "1.0").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        with pytest.raises(DigestMismatch) as caught:
            await client.get_manifest(ref, image.digest)
    assert caught.value.expected == image.digest
    assert caught.value.actual == other.digest


async def test_manifest_body_is_bounded(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer(OS_RELEASE).label("padding", "x" * 4000).build()
    index = build_index([image] * 30)  # ~ 30 entries of ~200 bytes
    await push(registry.url, repo, "big", index)
    settings = RegistrySettings(max_manifest_bytes=1024)
    async with RegistryClient(settings) as client:
        with pytest.raises(ScanLimitExceeded, match="max_manifest_bytes=1024"):
            await client.get_manifest(registry.ref(repo, "big"), "big")


async def test_manifest_body_cut_short_is_fetched_again(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = ImageBuilder().layer(OS_RELEASE).build()
    await push(registry.url, repo, "1.0", image)
    proxy = await make_proxy(registry.url, hooks=[drop_after(registry.url, 50, kind="manifests")])
    ref = registry.ref(repo, "1.0").model_copy(update={"registry": proxy.address})
    settings = RegistrySettings(backoff_initial=0.01)
    async with RegistryClient(settings) as client:
        assert await client.get_manifest(ref, image.digest) == (
            mt.OCI_MANIFEST,
            image.manifest,
            image.digest,
        )
    assert proxy.count("GET", "manifests") == 2
