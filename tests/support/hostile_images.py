"""Hostile images, built in memory: decompression bombs, a million tar entries, 64 KB paths, symlink loops,
invalid UTF-8, oversized configs and indexes, broken and lying rpm databases. Shared by the hostile-image
tests (which check each ends with its named outcome) and bench/hostile_images_bench.py (which measures
what each costs).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import tarfile
from dataclasses import replace

from distroguard.registry import mediatypes as mt
from support.distros import DEBIAN_12_ROOT
from support.images import (
    BuiltImage,
    BuiltIndex,
    Hardlink,
    ImageBuilder,
    Symlink,
    canonical_json,
    gzip_bomb,
    sha256,
    tar_bytes,
)

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

MB = 1024 * 1024


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


# ---------------------------------------------------------------------- whole images


def symlink_loops_image() -> BuiltImage:
    """Loops and escapes across layers: /etc/os-release 40 hops of 4,000-character targets into a loop
    spanning two layers, loaders escaping the root, and a 2,000-link ring."""
    return (
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


def hardlink_to_nothing_image() -> BuiltImage:
    """Debian 12 whose os-release files are hard links to nothing (one to itself)."""
    root = {k: v for k, v in DEBIAN_12_ROOT.items() if k not in ("etc/os-release", "usr/lib/os-release")}
    root["etc/os-release"] = Hardlink("nowhere/os-release")
    root["usr/lib/os-release"] = Hardlink("usr/lib/os-release")  # to itself
    return ImageBuilder().layer(root).build()


def invalid_utf8_config_image() -> BuiltImage:
    base = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    config = base.config.replace(b'"Env":[]', b'"Env":["A=\xff\xfe"]')
    assert config != base.config
    return with_config(base, config)


def big_config_images(size: int = 100 * MB) -> tuple[BuiltImage, BuiltImage]:
    """Debian 12 with a config padded to `size`: (declared at its size, declared at the original size)."""
    base = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    config = base.config[:-1] + b',"padding":"' + b"x" * size + b'"}'
    return with_config(base, config), with_config(base, config, declared_size=len(base.config))


class _Content(io.RawIOBase):
    """`head`, then `#` bytes, `size` in all, made on demand."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        taken, self.head = self.head[:n], self.head[n:]
        buffer[:n] = taken + b"#" * (n - len(taken))
        self.left -= n
        return n


def one_file_tar(name: str, size: int, head: bytes) -> bytes:
    """A tar of one file of `size` bytes starting with `head` (the rest `#`), streamed as it is built."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, _Content(head, size))
    return out.getvalue()


def big_os_release_image(size: int = 100 * MB) -> BuiltImage:
    """Stored uncompressed (a compressed one would trip the ratio bound first): the file bound stops it."""
    return ImageBuilder().raw_layer(one_file_tar("etc/os-release", size, b"ID=debian\n"), "none").build()


def gzip_bomb_image(size: int = 1 << 30) -> BuiltImage:
    return ImageBuilder().raw_layer(gzip_bomb(size), "none").build()  # already gzip: stored as is


def zstd_bomb_image(size: int = 1 << 30) -> BuiltImage:
    return ImageBuilder().raw_layer(zstd_bomb(size), "none").build()  # already compressed


# ---------------------------------------------------------------------- hostile rpm databases

UBI9_OS_RELEASE = b'NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="9.4"\n'


def _bdb_page(number: int, kind: int, *, next_page: int = 0, entries: int = 0, high: int = 0) -> bytearray:
    page = bytearray(512)
    struct.pack_into("<IIIHHBB", page, 8, number, 0, next_page, entries, high, 0, kind)
    return page


def bdb_overflow_loop() -> bytes:
    """A Berkeley DB hash whose one value's overflow chain loops on itself (page 2 -> page 2)."""
    meta = bytearray(512)
    struct.pack_into("<I", meta, 12, 0x061561)
    struct.pack_into("<I", meta, 16, 9)
    struct.pack_into("<I", meta, 20, 512)
    meta[25] = 8  # hash meta page
    struct.pack_into("<I", meta, 32, 2)  # last page
    bucket = _bdb_page(1, 13, entries=2)
    key_at, value_at = 500, 488
    struct.pack_into("<HH", bucket, 26, key_at, value_at)
    bucket[key_at] = 1  # H_KEYDATA: the package number
    struct.pack_into("<I", bucket, key_at + 1, 1)
    bucket[value_at] = 3  # H_OFFPAGE: the header on overflow page 2, 1 GB long
    struct.pack_into("<II", bucket, value_at + 4, 2, 1 << 30)
    overflow = _bdb_page(2, 7, next_page=2, high=400)
    return bytes(meta + bucket + overflow)


def sqlite_runaway_and_huge_counts(rows: int = 150_000) -> bytes:
    """An rpmdb.sqlite with more rows than any system has packages, each a header claiming 2^24 tags."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    blob = struct.pack(">ii", 0xFFFFFF, 0x0FFFFFFF) + bytes(8)
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", ((blob,) for _ in range(rows)))
    connection.commit()
    return connection.serialize()


def ndb_slot_pages_claim() -> bytes:
    """A Packages.db (ndb) whose header claims 16 million slot pages in a 4 KB file."""
    data = bytearray(4096)
    struct.pack_into("<4sIII", data, 0, b"RpmP", 0, 1, 0xFFFFFF)
    return bytes(data)


def rpm_database_image(path: str, database: bytes) -> BuiltImage:
    """A RHEL-like root whose rpm database at `path` is hostile."""
    return ImageBuilder().layer({"/etc/os-release": UBI9_OS_RELEASE, path: database}).build()


def oversized_rpm_database_image(size: int = 60 * MB) -> BuiltImage:
    """A `Packages` larger than the bound, stored uncompressed (so that it reaches the scan whole)."""
    layer = one_file_tar("var/lib/rpm/Packages", size, b"\x00" * 12 + struct.pack("<I", 0x061561))
    return ImageBuilder().layer({"/etc/os-release": UBI9_OS_RELEASE}).raw_layer(layer, "none").build()


RPM_DATABASE_CASES = {
    "rpm bdb with a looping overflow chain": lambda: rpm_database_image(
        "/var/lib/rpm/Packages", bdb_overflow_loop()
    ),
    "rpm sqlite of 150,000 lying headers": lambda: rpm_database_image(
        "/var/lib/rpm/rpmdb.sqlite", sqlite_runaway_and_huge_counts()
    ),
    "rpm ndb claiming 16M slot pages": lambda: rpm_database_image(
        "/usr/lib/sysimage/rpm/Packages.db", ndb_slot_pages_claim()
    ),
    "rpm database of 60 MB": oversized_rpm_database_image,
}
"""Each resolves (RHEL, glibc from the release table) with evidence that its database was not read."""
