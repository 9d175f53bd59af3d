"""The overlay rules: whiteouts, opaque directories, replacement, hard links, links across layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from distroguard.errors import DigestMismatch, ScanLimitExceeded
from distroguard.scan.layers import LayerScan, ScanLimits
from distroguard.scan.tree import FileTree

DEBIAN = b'ID=debian\nVERSION_ID="12"\n'
ALPINE = b"ID=alpine\nVERSION_ID=3.19.1\n"

Entry = tuple[str, str, bytes | str]  # (kind, path, content or link target)


def tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, path, value in entries:
            info = tarfile.TarInfo(path)
            if kind == "file":
                assert isinstance(value, bytes)
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            if kind != "dir":
                assert isinstance(value, str)
                info.linkname = value
            tf.addfile(info)
    return buf.getvalue()


def scan(*layers: list[Entry], limits: ScanLimits | None = None) -> FileTree:
    tree = FileTree()
    for index, entries in enumerate(layers):
        layer = LayerScan(tree, f"sha256:{index:064x}", limits or ScanLimits())
        data = gzip.compress(tar(entries))
        for i in range(0, len(data), 1000):
            layer.feed(data[i : i + 1000])
        layer.close()
    return tree


def os_release(tree: FileTree) -> bytes | None:
    found = tree.read("/etc/os-release")
    return found.content if found else None


def test_upper_layer_overrides_a_file() -> None:
    tree = scan([("file", "etc/os-release", DEBIAN)], [("file", "etc/os-release", ALPINE)])
    assert os_release(tree) == ALPINE
    found = tree.read("/etc/os-release")
    assert found is not None
    assert found.layer == f"sha256:{1:064x}"


def test_whiteout_removes_a_lower_file() -> None:
    tree = scan([("file", "etc/os-release", DEBIAN)], [("file", "etc/.wh.os-release", b"")])
    assert os_release(tree) is None


def test_whiteout_of_a_directory_removes_its_tree() -> None:
    tree = scan(
        [("file", "usr/lib/os-release", DEBIAN), ("link", "etc/os-release", "../usr/lib/os-release")],
        [("file", "usr/.wh.lib", b"")],
    )
    assert os_release(tree) is None
    assert "/etc/os-release" in tree  # the link itself stays, dangling


def test_opaque_directory_hides_lower_but_keeps_its_own_layer() -> None:
    tree = scan(
        [("file", "etc/os-release", DEBIAN), ("file", "etc/debian_version", b"12.5\n")],
        [("file", "etc/os-release", ALPINE), ("file", "etc/.wh..wh..opq", b"")],
    )
    assert os_release(tree) == ALPINE
    assert tree.read("/etc/debian_version") is None


def test_file_replacing_a_directory_hides_the_directory_tree() -> None:
    tree = scan(
        [("file", "usr/lib/os-release", DEBIAN), ("link", "etc/os-release", "/usr/lib/os-release")],
        [("file", "usr/lib", b"not a directory any more")],
    )
    assert os_release(tree) is None


def test_directory_replacing_a_symlink() -> None:
    tree = scan(
        [("link", "etc", "usr/lib"), ("file", "usr/lib/os-release", DEBIAN)],
        [("dir", "etc", ""), ("file", "etc/os-release", ALPINE)],
    )
    assert os_release(tree) == ALPINE
    assert tree.read("/usr/lib/os-release") is not None


def test_symlink_and_target_in_different_layers() -> None:
    tree = scan(
        [("link", "etc/os-release", "../usr/lib/os-release")],
        [("file", "usr/lib/os-release", DEBIAN)],
    )
    assert os_release(tree) == DEBIAN


def test_merged_usr_directory_symlink_resolves_files_below_it() -> None:
    tree = scan(
        [("link", "lib", "usr/lib"), ("file", "usr/lib/os-release", DEBIAN)],
        [("link", "etc/os-release", "/lib/os-release")],
    )
    assert os_release(tree) == DEBIAN


def test_hardlinks_in_the_same_and_in_a_lower_layer() -> None:
    tree = scan(
        [("file", "usr/lib/os-release", DEBIAN), ("hard", "etc/os-release", "usr/lib/os-release")],
        [("hard", "etc/lsb-release", "etc/os-release")],
    )
    assert os_release(tree) == DEBIAN
    lsb = tree.read("/etc/lsb-release")
    assert lsb is not None
    assert lsb.content == DEBIAN


def test_hardlink_to_nothing_is_harmless() -> None:
    tree = scan([("hard", "etc/os-release", "does/not/exist")])
    assert os_release(tree) is None
    assert tree.exists("/etc/os-release")  # present, content unknown


def test_uninteresting_file_replacing_a_kept_symlink_removes_it() -> None:
    tree = scan(
        [("link", "usr/bin/python3", "python3.11"), ("file", "etc/os-release", DEBIAN)],
        [("file", "usr/bin/python3", b"#!/bin/sh\n")],
    )
    assert tree.get("/usr/bin/python3") is None


def test_symlink_loop_across_layers_resolves_to_nothing() -> None:
    tree = scan([("link", "etc/os-release", "/etc/a")], [("link", "etc/a", "/etc/os-release")])
    assert os_release(tree) is None


def test_uncompressed_content_is_checked_against_the_diff_id() -> None:
    data = tar([("file", "etc/os-release", DEBIAN)])
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    tree = FileTree()
    layer = LayerScan(tree, "sha256:" + "1" * 64, ScanLimits(), diff_id=good)
    layer.feed(gzip.compress(data))
    layer.close()
    assert os_release(tree) == DEBIAN
    bad = LayerScan(FileTree(), "sha256:" + "1" * 64, ScanLimits(), diff_id="sha256:" + "0" * 64)
    bad.feed(gzip.compress(data))
    with pytest.raises(DigestMismatch, match="uncompressed content"):
        bad.close()


def test_kept_nodes_are_bounded() -> None:
    links: list[Entry] = [("link", f"usr/bin/l{i}", "x") for i in range(50)]
    with pytest.raises(ScanLimitExceeded, match="max_kept_nodes=20"):
        scan(links, limits=ScanLimits(max_kept_nodes=20))


def test_over_long_paths_are_skipped() -> None:
    deep = "a/" * 3000 + "os-release"
    tree = scan([("link", deep, "x"), ("file", "etc/os-release", DEBIAN)])
    assert len(tree) == 1


def test_oversized_release_file_is_a_clear_bound() -> None:
    with pytest.raises(ScanLimitExceeded, match=r"max_file_bytes=.*/etc/os-release"):
        scan([("file", "etc/os-release", b"ID=x\n" + b"#" * 2_000_000)])
