"""Image → facts end to end: images built by the tests, pushed to a real registry, resolved."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from distroguard.errors import (
    AuthenticationError,
    DeadlineExceeded,
    DigestMismatch,
    NotFoundError,
    PlatformNotFound,
    ScanLimitExceeded,
    SourceError,
)
from distroguard.model import Platform
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support.bounded import resolve_afresh
from support.distros import (
    ALPINE_GCOMPAT_ROOT,
    ALPINE_ROOT,
    DEBIAN_11_ROOT,
    DEBIAN_12_ROOT,
    DISTROLESS_STATIC_ROOT,
    ELF,
    UBUNTU_MUSL_ROOT,
    Files,
)
from support.images import (
    BuiltImage,
    ImageBuilder,
    Opaque,
    Symlink,
    Whiteout,
    build_index,
    gzip_bomb,
    push,
)
from support.proxy import CountingProxy
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
PYTHON_LAYER: Files = {"usr/local/bin/python3.12": ELF, "usr/local/lib/python3.12/os.py": b"# os\n" * 2000}


def python_image(base: Files = DEBIAN_12_ROOT, *, fmt: str = "oci", compression: str = "gzip") -> BuiltImage:
    return (
        ImageBuilder(format=fmt)  # type: ignore[arg-type]
        .layer(base, compression)  # type: ignore[arg-type]
        .layer(PYTHON_LAYER, "zstd")
        .env("PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.12.8")
        .build()
    )


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        yield resolver
        await resolver.drain()


async def pushed(
    registry: RegistryServer | CountingProxy, repo: str, image: BuiltImage, tag: str = "1"
) -> str:
    await push(registry.url, repo, tag, image)
    return f"{registry.address}/{repo}:{tag}"


@pytest.mark.parametrize("fmt", ["oci", "docker"])
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
async def test_debian_python_image(
    registry: RegistryServer, repo: str, resolver: Resolver, fmt: str, compression: str
) -> None:
    image = python_image(fmt=fmt, compression=compression)
    facts = await resolver.resolve(await pushed(registry, repo, image))
    assert facts.os is not None
    assert (facts.os.id, facts.os.version_id, facts.os.codename) == ("debian", "12", "bookworm")
    assert (facts.libc.family, facts.libc.version) == ("glibc", "2.36")
    assert [(r.name, r.version) for r in facts.runtimes] == [("python", "3.12.8")]
    assert facts.digest == image.digest
    assert facts.platform == "linux/amd64"
    assert facts.mode == "fast"
    assert facts.image_size == len(image.config) + sum(layer.size for layer in image.layers)
    base_layer = image.layers[0]
    # fast mode: manifest + config + the base layer, not the python layer
    assert facts.bytes_fetched == len(image.manifest) + len(image.config) + base_layer.size
    os_evidence = next(e for e in facts.evidence if e.fact == "os")
    assert (os_evidence.path, os_evidence.layer) == ("/usr/lib/os-release", base_layer.digest)
    assert any(e.fact == "scan" and "read 1 of 2 layers" in e.detail for e in facts.evidence)


@pytest.mark.parametrize(
    ("root", "os_id", "family", "version"),
    [
        pytest.param(ALPINE_ROOT, "alpine", "musl", "1.2.4", id="alpine"),
        pytest.param(ALPINE_GCOMPAT_ROOT, "alpine", "musl", "1.2.4", id="alpine-gcompat"),
        pytest.param(UBUNTU_MUSL_ROOT, "ubuntu", "glibc", "2.39", id="ubuntu-with-musl-package"),
        pytest.param(DISTROLESS_STATIC_ROOT, "debian", "none", None, id="distroless-static"),
    ],
)
async def test_libc_traps_through_the_registry(
    registry: RegistryServer,
    repo: str,
    resolver: Resolver,
    root: Files,
    os_id: str,
    family: str,
    version: str | None,
) -> None:
    image = ImageBuilder().layer(root).layer({"app/run": ELF}).build()
    facts = await resolver.resolve(await pushed(registry, repo, image))
    assert facts.os is not None
    assert facts.os.id == os_id
    assert (facts.libc.family, facts.libc.version) == (family, version)


async def test_scratch_image_with_a_static_binary(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    image = ImageBuilder().layer({"app": ELF, "etc/ssl/certs/ca.pem": b"cert"}).build()
    facts = await resolver.resolve(await pushed(registry, repo, image))
    assert facts.os is None
    assert facts.libc.family == "none"


async def test_fast_and_thorough_see_an_upgrade_in_an_upper_layer(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    upgrade = {k: v for k, v in DEBIAN_12_ROOT.items() if not isinstance(v, Symlink)}
    image = ImageBuilder().layer(DEBIAN_11_ROOT).layer(upgrade).build()
    ref = await pushed(registry, repo, image)
    fast = await resolver.resolve(ref)
    thorough = await resolver.resolve(ref, mode="thorough")
    assert fast.os is not None
    assert thorough.os is not None
    assert (fast.os.version_id, fast.libc.version) == ("11", "2.31")
    assert (thorough.os.version_id, thorough.libc.version) == ("12", "2.36")
    assert thorough.mode == "thorough"
    assert thorough.bytes_fetched > fast.bytes_fetched


async def test_whiteouts_and_opaque_directories_in_thorough_mode(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    image = (
        ImageBuilder()
        .layer(DEBIAN_12_ROOT)
        .layer({"var/lib/dpkg": Opaque(), "var/lib/dpkg/status": b"Package: tzdata\nVersion: 1\n"})
        .layer({"usr/lib/x86_64-linux-gnu/libc.so.6": Whiteout()})
        .build()
    )
    ref = await pushed(registry, repo, image)
    fast = await resolver.resolve(ref, mode="fast")
    thorough = await resolver.resolve(ref, mode="thorough")
    libc_sources = {(e.source, e.path) for e in fast.evidence if e.fact.startswith("libc")}
    assert ("package-db", "/var/lib/dpkg/status") in libc_sources
    # Thorough: dpkg's database was replaced and libc.so.6 removed; only the loader is left, so the
    # family comes from it and the version from the release table.
    thorough_sources = {(e.source, e.path) for e in thorough.evidence if e.fact.startswith("libc")}
    assert ("package-db", "/var/lib/dpkg/status") not in thorough_sources
    assert not any(path and path.endswith("libc.so.6") for _, path in thorough_sources)
    assert ("table", None) in thorough_sources
    assert (thorough.libc.family, thorough.libc.version) == ("glibc", "2.36")


@pytest.mark.parametrize("fmt", ["oci", "docker"])
async def test_multi_platform_index(
    registry: RegistryServer, repo: str, resolver: Resolver, fmt: str
) -> None:
    amd64 = ImageBuilder(platform="linux/amd64", format=fmt).layer(DEBIAN_12_ROOT).build()  # type: ignore[arg-type]
    arm64 = ImageBuilder(platform="linux/arm64/v8", format=fmt).layer(ALPINE_ROOT).build()  # type: ignore[arg-type]
    index = build_index([amd64, arm64], format=fmt, attestations=fmt == "oci")  # type: ignore[arg-type]
    await push(registry.url, repo, "multi", index)
    ref = f"{registry.address}/{repo}:multi"
    default = await resolver.resolve(ref)
    arm = await resolver.resolve(ref, Platform.parse("linux/arm64"))
    assert default.os is not None
    assert arm.os is not None
    assert (default.os.id, default.platform, default.digest) == ("debian", "linux/amd64", index.digest)
    assert (arm.os.id, arm.platform) == ("alpine", "linux/arm64/v8")
    with pytest.raises(PlatformNotFound, match=r"linux/s390x \(available: linux/amd64, linux/arm64/v8"):
        await resolver.resolve(ref, Platform.parse("linux/s390x"))


async def test_private_repository_with_and_without_credentials(
    basic_registry: RegistryServer, repo: str
) -> None:
    await push(basic_registry.url, repo, "1", python_image(), auth=basic_registry.push_auth)
    ref = f"{basic_registry.address}/{repo}:1"
    async with RegistryClient() as anonymous:
        with pytest.raises(AuthenticationError, match=basic_registry.address):
            await Resolver(anonymous).resolve(ref)
    async with RegistryClient(credentials=basic_registry.credentials()) as client:
        facts = await Resolver(client).resolve(ref)
    assert facts.libc.family == "glibc"


async def test_token_auth_registry(token_registry: RegistryServer, repo: str) -> None:
    await push(token_registry.url, repo, "1", python_image(), auth=token_registry.push_auth)
    async with RegistryClient(credentials=token_registry.credentials()) as client:
        facts = await Resolver(client).resolve(f"{token_registry.address}/{repo}:1")
    assert facts.os is not None
    assert facts.os.id == "debian"


async def test_200_concurrent_lookups_make_one_request_each(
    registry: RegistryServer, repo: str, resolver: Resolver, make_proxy: MakeProxy
) -> None:
    image = python_image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url)
    ref = f"{proxy.address}/{repo}:1"
    results = await asyncio.gather(*(resolver.resolve(ref) for _ in range(200)))
    assert len({r.digest for r in results}) == 1
    requests = [(r.method, r.path) for r in proxy.records]
    assert len(requests) == len(set(requests)), requests  # nothing asked twice
    assert proxy.count("HEAD", "manifests") == 0  # the tag's manifest, read by GET, gives the digest
    assert proxy.count("GET", "manifests") == 1
    assert proxy.count("GET", "blobs") == 2  # config + base layer (fast mode)


async def test_an_image_on_a_seen_base_fetches_no_layer_bytes(
    registry: RegistryServer, repo: str, resolver: Resolver, make_proxy: MakeProxy
) -> None:
    first = python_image()
    second = ImageBuilder().layer(DEBIAN_12_ROOT).layer({"srv/app.py": b"print(1)\n"}).env("X=1").build()
    assert first.layers[0].digest == second.layers[0].digest
    await push(registry.url, repo, "first", first)
    await push(registry.url, repo, "second", second)
    proxy = await make_proxy(registry.url)
    await resolver.resolve(f"{proxy.address}/{repo}:first")
    before = proxy.count("GET", "blobs")
    facts = await resolver.resolve(f"{proxy.address}/{repo}:second")
    assert proxy.count("GET", "blobs") - before == 1  # the config only
    assert facts.bytes_fetched == len(second.manifest) + len(second.config)
    assert (facts.libc.family, facts.libc.version) == ("glibc", "2.36")
    assert resolver.cache.stats["bases.hit"] == 1
    assert any("base-layer cache" in e.detail for e in facts.evidence if e.fact == "scan")


async def test_failures_are_cached_briefly(
    registry: RegistryServer, repo: str, resolver: Resolver, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(registry.url)
    ref = f"{proxy.address}/{repo}:missing"
    for _ in range(5):
        with pytest.raises(NotFoundError):
            await resolver.resolve(ref)
    assert proxy.count() == 1


async def test_deadline_answers_in_time_and_the_work_finishes_in_the_background(
    registry: RegistryServer, repo: str, resolver: Resolver, make_proxy: MakeProxy
) -> None:
    await push(registry.url, repo, "1", python_image())

    async def slow(request: web.Request) -> None:
        await asyncio.sleep(0.5)

    proxy = await make_proxy(registry.url, hooks=[slow])
    ref = f"{proxy.address}/{repo}:1"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"not resolved within 0\.1 s"):
        await resolver.resolve(ref, budget=0.1)
    # Each of the lookup's requests takes 0.5 s, the whole lookup 2 s or more.
    assert time.monotonic() - started < 1.0
    await resolver.drain()
    count = proxy.count()
    facts = await resolver.resolve(ref, budget=0.1)
    assert facts.libc.family == "glibc"
    assert proxy.count() == count  # answered from the cache


# -- hostile images ---------------------------------------------------------------------------------


def raw_image(tar: bytes, compression: str = "gzip") -> BuiltImage:
    return ImageBuilder().raw_layer(tar, compression).build()  # type: ignore[arg-type]


def tar_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.slow
async def test_hostile_images_end_at_their_bounds(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    many = tar_of([(f"d{i // 1000}/f{i}", b"") for i in range(160_000)])
    huge_os_release = tar_of([("etc/os-release", b"ID=debian\n" + b"#" * 50_000_000)])
    loop = ImageBuilder().layer({"etc/os-release": Symlink("a"), "etc/a": Symlink("os-release")}).build()
    cases: dict[str, tuple[BuiltImage, type[BaseException], str]] = {
        # Already compressed, so stored as is; layers are recognised by their magic bytes.
        "gzip-bomb": (raw_image(gzip_bomb(1 << 30), "none"), ScanLimitExceeded, "max_compression_ratio"),
        "many-entries": (raw_image(many), ScanLimitExceeded, "max_tar_entries=100000"),
        "big-os-release": (raw_image(huge_os_release), ScanLimitExceeded, "max_file_bytes=65536"),
        "truncated-gzip": (
            raw_image(gzip.compress(tar_of([("a", os.urandom(100_000))]))[:50_000], "none"),
            SourceError,
            "truncated",
        ),
    }
    for name, (image, error, reason) in cases.items():
        ref = await pushed(registry, repo, image, tag=name)
        outcome = await resolve_afresh(resolver.client, ref)
        assert isinstance(outcome, error), (name, outcome)
        assert reason in str(outcome), (name, str(outcome))
    facts = await resolver.resolve(await pushed(registry, repo, loop, tag="loop"))
    assert facts.os is None  # a symlink loop resolves to nothing, it does not hang


async def test_a_corrupted_blob_is_a_digest_mismatch(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).env(f"UNIQUE={repo}").build()
    ref = await pushed(registry, repo, image)
    digest = image.config_digest
    stored = next(p for p in registry.blob_paths() if p.parent.name == digest.removeprefix("sha256:"))
    stored.write_bytes(stored.read_bytes().replace(b"UNIQUE=", b"UNIQUX="))
    async with RegistryClient() as client:
        with pytest.raises(DigestMismatch, match=digest):
            await Resolver(client).resolve(ref)
