"""Hostile images, pushed to the real registry and resolved: each ends with the outcome the code's bounds
give it.

Every case must end in the outcome named here (for a refused image, the error naming the bound or the
problem), write nothing to disk, and leave the client serving the next lookup normally. What each costs
in CPU time and memory is the machine's business, not a test's: bench/hostile_images_bench.py measures it.
test_resolver.py covers 160k entries, a 50 MB os-release, a truncated gzip stream, a symlink loop in one
layer and a corrupted config blob; this file covers the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from distroguard.errors import DigestMismatch, ScanLimitExceeded, SourceError
from distroguard.model import ImageFacts
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support.bounded import no_disk_writes, resolve_afresh
from support.distros import DEBIAN_12_ROOT
from support.hostile_images import (
    MB,
    RPM_DATABASE_CASES,
    big_config_images,
    big_os_release_image,
    gzip_bomb_image,
    hardlink_to_nothing_image,
    invalid_utf8_config_image,
    invalid_utf8_layer,
    long_path_layer,
    many_layers,
    million_entries,
    symlink_loops_image,
    wide_index,
    zstd_bomb_image,
)
from support.images import BuiltImage, BuiltIndex, ImageBuilder, push, sha256
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

Check = Callable[[BaseException | ImageFacts], None]


# ---------------------------------------------------------------------- checks


def refused(error: type[BaseException], *words: str) -> Check:
    def check(outcome: BaseException | ImageFacts) -> None:
        assert isinstance(outcome, error), outcome
        for word in words:
            assert word in str(outcome), (word, str(outcome))

    return check


def resolved(os_id: str | None, libc: str | None = None) -> Check:
    def check(outcome: BaseException | ImageFacts) -> None:
        assert isinstance(outcome, ImageFacts), outcome
        assert (outcome.os.id if outcome.os else None) == os_id, outcome.os
        if libc is not None:
            assert outcome.libc.family == libc, outcome.libc
        outcome.model_dump_json()  # whatever the image held, the facts serialise (no lone surrogates)
        for evidence in outcome.evidence:
            assert evidence.path is None or evidence.path.startswith("/"), evidence

    return check


async def check_bounded(registry: RegistryServer, client: RegistryClient, ref: str, check: Check) -> None:
    with no_disk_writes() as writes:
        outcome = await resolve_afresh(client, ref)
    check(outcome)
    assert not writes, writes
    # The same client serves the next lookup normally.
    normal = await Resolver(client).resolve(f"{registry.address}/{NORMAL}")
    assert normal.os is not None
    assert normal.os.id == "debian"


NORMAL = "hostile/normal:1"


@pytest.fixture
async def client(registry: RegistryServer) -> AsyncIterator[RegistryClient]:
    repo, tag = NORMAL.split(":")
    await push(registry.url, repo, tag, ImageBuilder().layer(DEBIAN_12_ROOT).build())
    async with RegistryClient() as client:
        yield client


async def pushed(registry: RegistryServer, repo: str, image: BuiltImage | BuiltIndex, tag: str) -> str:
    await push(registry.url, repo, tag, image)
    return f"{registry.address}/{repo}:{tag}"


# ---------------------------------------------------------------------- the cases


@pytest.mark.parametrize("case", sorted(RPM_DATABASE_CASES))
async def test_hostile_rpm_databases_are_not_read_and_say_so(
    registry: RegistryServer, repo: str, client: RegistryClient, case: str
) -> None:
    ref = await pushed(registry, repo, RPM_DATABASE_CASES[case](), "rpmdb")

    def check(outcome: BaseException | ImageFacts) -> None:
        # The release table answers, as for an image without a database; the evidence says why not the
        # database, naming it.
        resolved("rhel", "glibc")(outcome)
        assert isinstance(outcome, ImageFacts)
        notes = [e for e in outcome.evidence if e.fact == "libc" and e.source == "package-db"]
        assert len(notes) == 1, outcome.evidence
        assert notes[0].detail.startswith("rpm database not read"), notes[0]
        assert notes[0].path is not None
        assert "/rpm/" in notes[0].path

    await check_bounded(registry, client, ref, check)


async def test_zstd_bomb(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    ref = await pushed(registry, repo, zstd_bomb_image(), "zstd-bomb")
    check = refused(ScanLimitExceeded, "max_compression_ratio=100", "decompression bomb")
    await check_bounded(registry, client, ref, check)


@pytest.mark.slow
async def test_a_million_tar_entries(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    image = ImageBuilder().raw_layer(million_entries(), "none").build()
    ref = await pushed(registry, repo, image, "million")
    check = refused(ScanLimitExceeded, "max_tar_entries=", "entries in one layer")
    await check_bounded(registry, client, ref, check)


async def test_64kb_path_names_are_skipped(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    # Paths and link targets longer than PATH_MAX cannot exist in a running container: such entries are
    # skipped, so neither the fake os-release nor the 64 KB symlink over the real one counts.
    image = ImageBuilder().raw_layer(long_path_layer()).build()
    ref = await pushed(registry, repo, image, "long-paths")
    await check_bounded(registry, client, ref, resolved("debian", "glibc"))


async def test_symlink_loops_and_escapes_across_layers(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = symlink_loops_image()
    ref = await pushed(registry, repo, image, "links")

    def check(outcome: BaseException | ImageFacts) -> None:
        # /etc/os-release is a loop, so the image's own /usr/lib/os-release answers (os-release(5)'s
        # fallback); the escaping loaders resolve inside the image root, where nothing is.
        resolved("debian")(outcome)
        assert isinstance(outcome, ImageFacts)
        assert outcome.libc.family != "musl"
        assert any(e.path == "/usr/lib/os-release" for e in outcome.evidence if e.fact == "os")

    await check_bounded(registry, client, ref, check)


async def test_a_hardlink_to_nothing(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    ref = await pushed(registry, repo, hardlink_to_nothing_image(), "hardlink")

    def check(outcome: BaseException | ImageFacts) -> None:
        # Both os-release files are links to nothing (present, no content): the older release file
        # answers, from the image itself.
        resolved("debian", "glibc")(outcome)
        assert isinstance(outcome, ImageFacts)
        assert {e.path for e in outcome.evidence if e.fact == "os"} == {"/etc/debian_version"}

    await check_bounded(registry, client, ref, check)


async def test_invalid_utf8_in_paths_and_os_release(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().raw_layer(invalid_utf8_layer()).env("X=\udcff").build()
    ref = await pushed(registry, repo, image, "utf8")

    def check(outcome: BaseException | ImageFacts) -> None:
        resolved("debian", "glibc")(outcome)
        assert isinstance(outcome, ImageFacts)
        assert outcome.os is not None
        assert outcome.os.version_id == "12"

    await check_bounded(registry, client, ref, check)


async def test_invalid_utf8_in_the_config(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    ref = await pushed(registry, repo, invalid_utf8_config_image(), "utf8-config")
    check = refused(SourceError, "config", "not valid JSON")
    await check_bounded(registry, client, ref, check)


async def test_a_manifest_with_1000_layers(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    ref = await pushed(registry, repo, many_layers(1000), "layers")
    check = refused(ScanLimitExceeded, "max_layers=500", "1000 layers")
    await check_bounded(registry, client, ref, check)


@pytest.mark.slow
async def test_an_index_of_10000_platforms(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    index = wide_index(image, 10_000)
    assert len(index.body) < 4 * MB  # under the registry's (and our) manifest size limit: it can be pushed
    ref = await pushed(registry, repo, index, "wide")
    check = refused(ScanLimitExceeded, "MAX_INDEX_ENTRIES=1000", "10000 entries")
    await check_bounded(registry, client, ref, check)


@pytest.mark.slow
async def test_a_100mb_config_blob(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    honest, lying = big_config_images()
    config = honest.config
    honest_ref = await pushed(registry, repo, honest, "big-config")
    lying_ref = await pushed(registry, repo, lying, "big-config-lying")
    # Declared as 100 MB: refused before a byte of it is read.
    check = refused(ScanLimitExceeded, "max_bytes=8388608", sha256(config), f"is {len(config)} bytes")
    await check_bounded(registry, client, honest_ref, check)
    # Declared small: the registry's extra bytes are refused as they arrive.
    check = refused(SourceError, "more than the descriptor's")
    await check_bounded(registry, client, lying_ref, check)


async def test_a_manifest_whose_digest_does_not_match_its_body(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).env(f"UNIQUE={repo}").build()
    ref = await pushed(registry, repo, image, "tampered")
    hexdigest = image.digest.removeprefix("sha256:")
    stored = next(p for p in registry.blob_paths() if p.parent.name == hexdigest)
    stored.write_bytes(stored.read_bytes().replace(b'"size":', b'"size" :', 1))
    # Asked by tag: the body is checked against the digest the registry says it has (Docker-Content-Digest).
    what = f"manifest {registry.address}/{repo}:tampered"
    check = refused(DigestMismatch, what, image.digest, "does not match")
    await check_bounded(registry, client, ref, check)


async def test_a_gzip_bomb_of_one_gib(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    ref = await pushed(registry, repo, gzip_bomb_image(), "bomb")
    check = refused(ScanLimitExceeded, "max_compression_ratio")
    await check_bounded(registry, client, ref, check)


@pytest.mark.slow
async def test_a_100mb_os_release(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    """Stored uncompressed (a compressed one would trip the ratio bound first): the file bound stops it."""
    ref = await pushed(registry, repo, big_os_release_image(), "os-release")
    await check_bounded(registry, client, ref, refused(ScanLimitExceeded, "max_file_bytes"))
