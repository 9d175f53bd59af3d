"""Hostile images, pushed to the real registry and resolved: each ends within its bounds.

Every case is measured (CPU seconds in one run, peak traced memory in another: see
`support.bounded`), must write nothing to disk, must end in the outcome named here (for a refused
image, an error naming the bound or the problem), and must leave the client serving the next lookup
normally. test_resolver.py covers the gzip bomb, 160k entries, a 50 MB os-release, a truncated gzip
stream, a symlink loop in one layer and a corrupted config blob; this file covers the rest.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from distroguard.errors import DigestMismatch, ScanLimitExceeded, SourceError
from distroguard.model import ImageFacts
from distroguard.registry import mediatypes as mt
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support.bounded import MAX_CPU_SECONDS, MAX_PEAK_BYTES, MB, no_disk_writes, resolve_bounded
from support.distros import DEBIAN_12_ROOT
from support.images import (
    BuiltImage,
    BuiltIndex,
    Hardlink,
    ImageBuilder,
    Symlink,
    canonical_json,
    push,
    sha256,
    tar_bytes,
)
from support.registry_server import RegistryServer

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.registry

Check = Callable[[BaseException | ImageFacts], None]


# ---------------------------------------------------------------------- hostile layers


def _header(name: bytes, size: int = 0, kind: bytes = b"0", linkname: bytes = b"") -> bytes:
    """One ustar header block, names given as raw bytes (any encoding, at most 100 bytes)."""
    info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
    info.size, info.type, info.mode, info.mtime = size, kind, 0o644, 0
    info.linkname = linkname.decode("utf-8", "surrogateescape")
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def zstd_bomb(size: int) -> bytes:
    """A zstd layer whose tar holds one file of `size` zero bytes (1 GiB packs into ~32 KB)."""
    compressor = zstd.ZstdCompressor()
    out = [compressor.compress(_header(b"zeros", size))]
    zeros = bytes(MB)
    for _ in range(size // MB):
        out.append(compressor.compress(zeros))
    out.append(compressor.compress(bytes(size % MB + 1024)))  # the rest, then the end-of-archive blocks
    out.append(compressor.flush())
    return b"".join(out)


def million_entries(count: int = 1_000_000) -> bytes:
    """A zstd layer of `count` empty files with random names (so it compresses like real headers, about
    30:1, well under the bomb ratio: the entry bound must be what stops it)."""
    template = bytearray(_header(b"x" * 32))
    template[148:156] = b" " * 8
    base = sum(template) - sum(b"x" * 32)
    head, tail = bytes(template[32:148]), bytes(template[156:])
    names = os.urandom(16 * count).hex().encode()
    compressor = zstd.ZstdCompressor()
    out: list[bytes] = []
    batch: list[bytes] = []
    for i in range(count):
        name = names[32 * i : 32 * i + 32]
        batch.append(b"%s%s%06o\x00 %s" % (name, head, base + sum(name), tail))
        if len(batch) == 10_000:
            out.append(compressor.compress(b"".join(batch)))
            batch = []
    out.append(compressor.compress(b"".join(batch) + bytes(1024)))
    out.append(compressor.flush())
    return b"".join(out)


def gnu_tar(entries: list[tarfile.TarInfo], data: dict[str, bytes], base: bytes = b"") -> bytes:
    """A GNU tar (long names as `L` records, raw bytes kept) of `base`'s members, then `entries`."""
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as archive:
        if base:
            with tarfile.open(fileobj=io.BytesIO(base)) as lower:
                for member in lower.getmembers():
                    archive.addfile(member, lower.extractfile(member) if member.isfile() else None)
        for info in entries:
            body = data.get(info.name)
            info.size = len(body) if body is not None else 0
            archive.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o777 if kind == tarfile.SYMTYPE else 0o644
    return info


def raw(b: bytes) -> str:
    """Raw bytes as tarfile carries them through (surrogateescape)."""
    return b.decode("utf-8", "surrogateescape")


def long_path_layer() -> bytes:
    """The Debian root, then 64 KB paths: one that normalises to /etc/os-release claiming another
    distribution, a symlink with a 64 KB target over /usr/lib/os-release, and 300 more."""
    long_dots = "etc/" + "./" * 32_768 + "os-release"
    entries = [
        entry(long_dots),
        entry("usr/lib/os-release", tarfile.SYMTYPE, "a/" * 32_768 + "os-release"),
        *(entry(f"opt/{i:03d}/" + "d" * 65_530) for i in range(300)),
    ]
    return gnu_tar(entries, {long_dots: b"ID=evil\nVERSION_ID=1\n"}, base=tar_bytes(DEBIAN_12_ROOT))


def invalid_utf8_layer() -> bytes:
    """The Debian root with invalid UTF-8 in file names (some where capture rules look) and in the
    os-release text itself."""
    os_release = b'PRETTY_NAME="Debian \xff\xfe GNU/Linux 12"\nID=debian\nVERSION_ID="12"\nNAME="\xc3("\n'
    names = {
        raw(b"etc/os-release"): os_release,
        raw(b"usr/lib/x86_64-linux-gnu/libc.so.6\xff"): b"\x7fELF",
        raw(b"lib/ld-musl-\xff\xfe.so.1"): b"\x7fELF",
        raw(b"etc/\xc3\x28/os-release"): b"ID=\xff\n",
        raw(b"\xed\xa0\x80/\xf8\x88\x80\x80\x80"): b"x",
    }
    entries = [entry(name) for name in names]
    entries.append(entry(raw(b"etc/alpine-release\xff"), tarfile.SYMTYPE, raw(b"../\xff\xfe")))
    base = tar_bytes({k: v for k, v in DEBIAN_12_ROOT.items() if k != "etc/os-release"})
    return gnu_tar(entries, names, base=base)


# ---------------------------------------------------------------------- hostile manifests


def with_config(image: BuiltImage, config: bytes, *, declared_size: int | None = None) -> BuiltImage:
    """`image` with another config blob (any bytes), its manifest rewritten to name it."""
    manifest = json.loads(image.manifest)
    manifest["config"]["digest"] = sha256(config)
    manifest["config"]["size"] = len(config) if declared_size is None else declared_size
    return replace(image, config=config, manifest=canonical_json(manifest))


def many_layers(count: int) -> BuiltImage:
    builder = ImageBuilder()
    for _ in range(count):  # one blob, named `count` times (a registry stores it once)
        builder.raw_layer(tar_bytes({"etc/motd": b"hi\n"}))
    return builder.build()


def wide_index(image: BuiltImage, count: int) -> BuiltIndex:
    """An index of `count` platforms (`linux/arch0`...), every entry naming the same manifest."""
    entries = [
        {
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "platform": {"os": "linux", "architecture": f"arch{i}"},
        }
        for i in range(count)
    ]
    body = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    return BuiltIndex(body=body, media_type=mt.OCI_INDEX, images=(image,))


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


@dataclass
class Measured:
    cpu: float
    peak: int


MEASURED: dict[str, Measured] = {}


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    yield
    for name, figures in MEASURED.items():
        print(f"hostile image {name:<22} CPU {figures.cpu:5.2f} s  peak {figures.peak / MB:6.1f} MB")


async def check_bounded(
    registry: RegistryServer, client: RegistryClient, name: str, ref: str, check: Check
) -> None:
    with no_disk_writes() as writes:
        outcome, cpu, peak = await resolve_bounded(client, ref)
    MEASURED[name] = Measured(cpu, peak)
    check(outcome)
    assert not writes, writes
    assert cpu <= MAX_CPU_SECONDS, (name, cpu)
    assert peak <= MAX_PEAK_BYTES, (name, peak / MB)
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


async def test_zstd_bomb(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    image = ImageBuilder().raw_layer(zstd_bomb(1 << 30), "none").build()  # already compressed
    ref = await pushed(registry, repo, image, "zstd-bomb")
    check = refused(ScanLimitExceeded, "max_compression_ratio=100", "decompression bomb")
    await check_bounded(registry, client, "zstd-bomb-1GiB", ref, check)


@pytest.mark.slow
async def test_a_million_tar_entries(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    image = ImageBuilder().raw_layer(million_entries(), "none").build()
    ref = await pushed(registry, repo, image, "million")
    check = refused(ScanLimitExceeded, "max_tar_entries=", "entries in one layer")
    await check_bounded(registry, client, "1M-entries", ref, check)


async def test_64kb_path_names_are_skipped(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    # Paths and link targets longer than PATH_MAX cannot exist in a running container: such entries are
    # skipped, so neither the fake os-release nor the 64 KB symlink over the real one counts.
    image = ImageBuilder().raw_layer(long_path_layer()).build()
    ref = await pushed(registry, repo, image, "long-paths")
    await check_bounded(registry, client, "64KB-paths", ref, resolved("debian", "glibc"))


async def test_symlink_loops_and_escapes_across_layers(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = (
        ImageBuilder()
        # No libc yet, so fast mode reads on. /etc/a escapes upwards to /b.
        .layer({"etc/a": Symlink("../../../../../../b"), "usr/lib/os-release": b"ID=debian\nVERSION_ID=12\n"})
        # /b leads back to /etc/a (a loop spanning both layers); /etc/os-release enters the loop; the
        # loader escapes the root by absolute and relative paths.
        .layer(
            {
                "b": Symlink("/etc/a"),
                # 40 hops of 4,000-character targets (800 components each) into the loop.
                "etc/os-release": Symlink("../deep/0"),
                **{f"deep/{i}": Symlink("q/../" * 800 + f"{i + 1}") for i in range(39)},
                "deep/39": Symlink("../etc/a"),
                "lib64/ld-linux-x86-64.so.2": Symlink("/../../../../../../../usr/lib64/ld-linux-x86-64.so.2"),
                "lib/ld-musl-x86_64.so.1": Symlink(
                    "../../../../../../proc/self/root/lib/ld-musl-x86_64.so.1"
                ),
            }
        )
        .layer({f"loop/{i}": Symlink(f"{(i + 1) % 2000}") for i in range(2000)})
        .build()
    )
    ref = await pushed(registry, repo, image, "links")

    def check(outcome: BaseException | ImageFacts) -> None:
        # /etc/os-release is a loop, so the image's own /usr/lib/os-release answers (os-release(5)'s
        # fallback); the escaping loaders resolve inside the image root, where nothing is.
        resolved("debian")(outcome)
        assert isinstance(outcome, ImageFacts)
        assert outcome.libc.family != "musl"
        assert any(e.path == "/usr/lib/os-release" for e in outcome.evidence if e.fact == "os")

    await check_bounded(registry, client, "symlink-loops", ref, check)


async def test_a_hardlink_to_nothing(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    root = {k: v for k, v in DEBIAN_12_ROOT.items() if k not in ("etc/os-release", "usr/lib/os-release")}
    root["etc/os-release"] = Hardlink("nowhere/os-release")
    root["usr/lib/os-release"] = Hardlink("usr/lib/os-release")  # to itself
    image = ImageBuilder().layer(root).build()
    ref = await pushed(registry, repo, image, "hardlink")

    def check(outcome: BaseException | ImageFacts) -> None:
        # Both os-release files are links to nothing (present, no content): the older release file
        # answers, from the image itself.
        resolved("debian", "glibc")(outcome)
        assert isinstance(outcome, ImageFacts)
        assert {e.path for e in outcome.evidence if e.fact == "os"} == {"/etc/debian_version"}

    await check_bounded(registry, client, "hardlink-to-nothing", ref, check)


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

    await check_bounded(registry, client, "invalid-utf8-paths", ref, check)


async def test_invalid_utf8_in_the_config(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    base = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    config = base.config.replace(b'"Env":[]', b'"Env":["A=\xff\xfe"]')
    assert config != base.config
    ref = await pushed(registry, repo, with_config(base, config), "utf8-config")
    check = refused(SourceError, "config", "not valid JSON")
    await check_bounded(registry, client, "invalid-utf8-config", ref, check)


async def test_a_manifest_with_1000_layers(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    ref = await pushed(registry, repo, many_layers(1000), "layers")
    check = refused(ScanLimitExceeded, "max_layers=500", "1000 layers")
    await check_bounded(registry, client, "1000-layers", ref, check)


@pytest.mark.slow
async def test_an_index_of_10000_platforms(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    index = wide_index(image, 10_000)
    assert len(index.body) < 4 * MB  # under the registry's (and our) manifest size limit: it can be pushed
    ref = await pushed(registry, repo, index, "wide")
    check = refused(ScanLimitExceeded, "MAX_INDEX_ENTRIES=1000", "10000 entries")
    await check_bounded(registry, client, "index-10000-platforms", ref, check)


@pytest.mark.slow
async def test_a_100mb_config_blob(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    base = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    config = base.config[:-1] + b',"padding":"' + b"x" * (100 * MB) + b'"}'
    honest = with_config(base, config)
    lying = with_config(base, config, declared_size=len(base.config))
    honest_ref = await pushed(registry, repo, honest, "big-config")
    lying_ref = await pushed(registry, repo, lying, "big-config-lying")
    # Declared as 100 MB: refused before a byte of it is read.
    check = refused(ScanLimitExceeded, "max_bytes=8388608", sha256(config), f"is {len(config)} bytes")
    await check_bounded(registry, client, "100MB-config", honest_ref, check)
    # Declared small: the registry's extra bytes are refused as they arrive.
    check = refused(SourceError, "more than the descriptor's")
    await check_bounded(registry, client, "100MB-config-lying", lying_ref, check)


async def test_a_manifest_whose_digest_does_not_match_its_body(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).env(f"UNIQUE={repo}").build()
    ref = await pushed(registry, repo, image, "tampered")
    hexdigest = image.digest.removeprefix("sha256:")
    stored = next(p for p in registry.blob_paths() if p.parent.name == hexdigest)
    stored.write_bytes(stored.read_bytes().replace(b'"size":', b'"size" :', 1))
    check = refused(DigestMismatch, f"manifest {registry.address}/{repo}@{image.digest}", "does not match")
    await check_bounded(registry, client, "manifest-digest", ref, check)
