"""Index → platform manifest through RegistrySource: defaults, variants, attestations, refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from distroguard.errors import PlatformNotFound
from distroguard.model import Platform
from distroguard.registry.client import RegistryClient
from distroguard.registry.source import RegistrySource
from support.images import BuiltImage, ImageBuilder, build_index, push
from support.proxy import CountingProxy
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]


def _image(platform: str, distro: str = "debian") -> BuiltImage:
    return ImageBuilder(platform=platform).layer({"etc/os-release": f"ID={distro}\n"}).build()


@pytest.fixture
async def multi(registry: RegistryServer, repo: str) -> dict[str, BuiltImage]:
    images = {
        "linux/amd64": _image("linux/amd64"),
        "linux/arm64/v8": _image("linux/arm64/v8"),
        "linux/arm/v6": _image("linux/arm/v6"),
        "linux/arm/v7": _image("linux/arm/v7"),
    }
    await push(registry.url, repo, "multi", build_index(images.values(), attestations=True))
    return images


@pytest.mark.parametrize(
    ("wanted", "picked"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/arm", "linux/arm/v7"),  # the default variant, though v6 is listed first
        ("linux/arm/v6", "linux/arm/v6"),
    ],
)
async def test_platform_selection(
    registry: RegistryServer, repo: str, multi: dict[str, BuiltImage], wanted: str, picked: str
) -> None:
    async with RegistryClient() as client:
        source = RegistrySource(client, registry.ref(repo, "multi"))
        resolved = await source.resolve(Platform.parse(wanted))
    assert resolved.platform == Platform.parse(picked)
    assert resolved.manifest_digest == multi[picked].digest
    assert resolved.digest != resolved.manifest_digest  # the index's own digest


async def test_missing_platform_lists_the_available_ones(
    registry: RegistryServer, repo: str, multi: dict[str, BuiltImage]
) -> None:
    async with RegistryClient() as client:
        source = RegistrySource(client, registry.ref(repo, "multi"))
        with pytest.raises(PlatformNotFound) as caught:
            await source.resolve(Platform.parse("linux/s390x"))
    assert caught.value.available == list(multi)  # attestations (unknown/unknown) are not offered
    assert "linux/s390x" in str(caught.value)
    assert "linux/arm64/v8" in str(caught.value)


async def test_attestation_only_match_is_no_match(registry: RegistryServer, repo: str) -> None:
    await push(registry.url, repo, "a", build_index([_image("linux/arm64")], attestations=True))
    async with RegistryClient() as client:
        source = RegistrySource(client, registry.ref(repo, "a"))
        with pytest.raises(PlatformNotFound, match=r"available: linux/arm64\)"):
            await source.resolve(Platform(os="unknown", architecture="unknown"))


async def test_single_manifest_platform_is_checked_against_its_config(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image("linux/arm64")
    await push(registry.url, repo, "arm-only", image)
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo, "arm-only").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        with pytest.raises(PlatformNotFound, match=r"linux/amd64 \(available: linux/arm64\)"):
            await RegistrySource(client, ref).resolve(Platform())
        source = RegistrySource(client, ref)
        resolved = await source.resolve(Platform.parse("linux/arm64"))
        config = await source.read_blob(resolved.manifest.config, max_bytes=1 << 20)
    assert resolved.platform == Platform.parse("linux/arm64")
    assert resolved.digest == resolved.manifest_digest == image.digest
    assert config == image.config
    # The config read to learn the platform is served again from memory, not fetched twice.
    assert proxy.count("GET", "blobs") == 2  # one per source
    assert source.meter.total == len(image.manifest) + len(image.config)


async def test_known_digest_skips_the_head(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image("linux/amd64")
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        resolved = await RegistrySource(client, ref, digest=image.digest).resolve(Platform())
    assert resolved.manifest_digest == image.digest
    assert proxy.count("HEAD") == 0
