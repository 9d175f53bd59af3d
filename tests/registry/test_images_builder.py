"""The test image builder itself: deterministic output, and the layer entries scanner tests need."""

from __future__ import annotations

import io
import tarfile

from support.images import (
    Dir,
    File,
    Hardlink,
    ImageBuilder,
    Opaque,
    Symlink,
    Whiteout,
    build_index,
    compress,
    tar_bytes,
)


def test_builds_are_deterministic() -> None:
    def build() -> tuple[str, str]:
        image = ImageBuilder().layer({"etc/os-release": "ID=debian\n"}, "gzip").env("A=1").build()
        index = build_index([image], attestations=True)
        return image.digest, index.digest

    assert build() == build()


def test_layer_entries() -> None:
    tar = tar_bytes(
        {
            "usr/lib/os-release": b"ID=alpine\n",
            "etc/os-release": Symlink("../usr/lib/os-release"),
            "bin/sh": File(b"#!", mode=0o755),
            "bin/ash": Hardlink("/bin/sh"),
            "var/cache": Opaque(),
            "etc/motd": Whiteout(),
            "opt": Dir(0o700),
        }
    )
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == sorted(
        [
            "bin",
            "bin/ash",
            "bin/sh",
            "etc",
            "etc/.wh.motd",
            "etc/os-release",
            "opt",
            "usr",
            "usr/lib",
            "usr/lib/os-release",
            "var",
            "var/cache",
            "var/cache/.wh..wh..opq",
        ]
    )
    assert members["etc/os-release"].issym()
    assert members["bin/ash"].islnk()
    assert members["bin/ash"].linkname == "bin/sh"
    assert members["bin/sh"].mode == 0o755
    assert members["opt"].isdir()
    assert {m.uid for m in members.values()} == {0}
    assert {m.mtime for m in members.values()} == {1_700_000_000}


def test_compression_magic() -> None:
    assert compress(b"x", "gzip")[:2] == b"\x1f\x8b"
    assert compress(b"x", "zstd")[:4] == b"\x28\xb5\x2f\xfd"
    assert compress(b"x", "none") == b"x"
