"""`capture_rule`: which tar entries are kept, and how much of each."""

from __future__ import annotations

import dataclasses
import re

import pytest
from scan_trees import captured

from distroguard.scan.capture import (
    BUSYBOX_BANNER,
    LIBC_BANNER,
    MAX_PATTERN_STANZAS,
    RELEASE_FILE_BYTES,
    CaptureRule,
    Keep,
    Presence,
    Search,
    Stanzas,
    capture_rule,
)
from distroguard.scan.collect import SearchCollector, collector_for


@pytest.mark.parametrize(
    "path",
    [
        "/etc/os-release",
        "/usr/lib/os-release",
        "/etc/lsb-release",
        "/etc/upstream-release/lsb-release",
        "/etc/debian_version",
        "/etc/alpine-release",
        "/etc/redhat-release",
        "/etc/centos-release",
        "/etc/rocky-release",
        "/etc/almalinux-release",
        "/etc/oracle-release",
        "/etc/fedora-release",
        "/etc/system-release",
        "/etc/system-release-cpe",
        "/etc/SuSE-release",
    ],
)
def test_release_files_are_kept_whole_up_to_64_kib(path: str) -> None:
    assert capture_rule(path) == Keep(RELEASE_FILE_BYTES)
    assert RELEASE_FILE_BYTES == 64 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/aarch64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/lib/libc.so.6",
        "/usr/lib/libc.so.6",
    ],
)
def test_libc_so_6_is_searched_for_the_glibc_banner(path: str) -> None:
    rule = capture_rule(path)
    assert isinstance(rule, Search)
    assert rule.pattern is LIBC_BANNER


@pytest.mark.parametrize(
    "path", ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", "/bin/[", "/usr/bin/["]
)
def test_busybox_is_searched_for_its_banner(path: str) -> None:
    rule = capture_rule(path)
    assert isinstance(rule, Search)
    assert rule.pattern is BUSYBOX_BANNER


@pytest.mark.parametrize(
    ("path", "key", "names"),
    [
        ("/var/lib/dpkg/status", b"Package:", {b"libc6", b"musl"}),
        ("/var/lib/dpkg/status.d/libc6", b"Package:", {b"libc6"}),
        ("/var/lib/dpkg/status.d/base-files", b"Package:", {b"libc6"}),
        ("/var/lib/dpkg/status.d/busybox", b"Package:", {b"libc6"}),
        ("/lib/apk/db/installed", b"P:", {b"musl", b"glibc", b"gcompat"}),
        ("/usr/lib/apk/db/installed", b"P:", {b"musl", b"glibc", b"gcompat"}),
    ],
)
def test_package_databases_keep_only_libc_stanzas(path: str, key: bytes, names: set[bytes]) -> None:
    rule = capture_rule(path)
    assert isinstance(rule, Stanzas)
    assert rule.key == key
    assert names <= rule.names
    assert rule.max_stanza >= 64 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "/lib/ld-musl-x86_64.so.1",
        "/lib/ld-musl-aarch64.so.1",
        "/lib/libc.musl-x86_64.so.1",
        "/usr/lib/ld-musl-x86_64.so.1",
        "/usr/lib/x86_64-linux-musl/libc.so",
        "/lib64/ld-linux-x86-64.so.2",
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/ld-linux-armhf.so.3",
        "/lib/ld-linux.so.2",
        "/lib64/ld64.so.2",
        "/lib/x86_64-linux-gnu/libc-2.28.so",
        "/usr/lib64/libc-2.17.so",
        "/lib/x86_64-linux-gnu/ld-2.28.so",
        "/lib/i386-linux-gnu/libc-2.31.so",
        "/usr/bin/python3.11",
        "/usr/local/bin/python3.12",
        "/usr/local/bin/python3.13t",
        "/usr/bin/python2.7",
    ],
)
def test_loaders_versioned_libraries_and_interpreters_are_kept_as_presence(path: str) -> None:
    assert capture_rule(path) == Presence()


@pytest.mark.parametrize(
    "path",
    [
        "/usr/share/doc/base-files/os-release",
        "/etc/os-release.d/extra",
        "/opt/app/lib/libc.so.6",
        "/usr/glibc-compat/lib/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libcrypt.so.1",
        "/usr/lib/x86_64-linux-gnu/libc_nonshared.a",
        "/usr/lib/python3/dist-packages/libc-2.28.so",
        "/var/lib/dpkg/status.d/libc6.md5sums",
        "/var/lib/dpkg/status-old",
        "/var/lib/dpkg/info/libc6:amd64.list",
        "/usr/bin/python3",
        "/usr/bin/python3.12-config",
        "/usr/local/lib/python3.12",
        "/home/user/bin/busybox",
        "/usr/lib/node_modules/npm/bin/node",
        "/usr/lib/python3.11/json/os.py",
        "/usr/lib/jvm/release",
        "/usr/bin/go",
        "/busybox",
        "/",
        "/etc",
    ],
)
def test_everything_else_is_skipped(path: str) -> None:
    assert capture_rule(path) is None


def test_rules_are_frozen_values() -> None:
    rule = capture_rule("/etc/os-release")
    assert rule is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.max_bytes = 1  # type: ignore[union-attr,misc]
    kinds: set[CaptureRule] = {Keep(1), Presence(), Keep(1)}
    assert len(kinds) == 2


# -- the Search patterns, as the streamer runs them -----------------------------------------------


def stream(pattern: re.Pattern[bytes], max_match: int, data: bytes, chunk: int) -> bytes | None:
    collector = SearchCollector(pattern, max_match)
    for start in range(0, len(data), chunk):
        collector.add(memoryview(data[start : start + chunk]))
    return collector.result()


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (b"GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.", b"2.36"),
        (b"GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.8) stable release version 2.35.", b"2.35"),
        (b"GNU C Library (GNU libc) stable release version 2.34.", b"2.34"),
        (b"GNU C Library (GNU libc) development release version 2.39.9000.", b"2.39"),
        (b"GNU C Library stable release version 2.17, by Roland McGrath et al.", b"2.17"),
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 4096])
def test_the_glibc_banner_survives_any_chunking(text: bytes, version: bytes, chunk: int) -> None:
    rule = capture_rule("/usr/lib64/libc.so.6")
    assert isinstance(rule, Search)
    data = b"\x7fELF" + b"\x00" * 333 + text + b"\nCopyright (C) 2023 Free Software Foundation"
    kept = stream(rule.pattern, rule.max_match, data, chunk)
    assert kept is not None
    assert len(kept) <= rule.max_match
    match = LIBC_BANNER.search(kept)
    assert match is not None
    assert match.group(1) == version


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_the_busybox_banner_survives_any_chunking(chunk: int) -> None:
    rule = capture_rule("/bin/busybox")
    assert isinstance(rule, Search)
    data = b"\x00" * 100 + b"BusyBox v1.36.1 (2023-07-27 17:12:24 UTC) multi-call binary.\x00"
    kept = stream(rule.pattern, rule.max_match, data, chunk)
    assert kept is not None
    match = BUSYBOX_BANNER.search(kept)
    assert match is not None
    assert match.group(1) == b"1.36.1"


def test_a_libc_so_6_without_the_banner_keeps_only_its_presence() -> None:
    assert captured("/lib/libc.so.6", b"\x7fELF gcompat shim, nothing GNU here") == (True, None)


def test_stanzas_keep_only_the_libc_packages() -> None:
    status = (
        b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n"
        b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n"
        b"Description: GNU C Library\n Contains the standard libraries.\n\n"
        b"Package: libc6-dev\nVersion: 2.36-9+deb12u4\n\n"
        b"Package: musl\nVersion: 1.2.3-1\n"
    )
    kept, content = captured("/var/lib/dpkg/status", status)
    assert kept
    assert content is not None
    assert b"base-files" not in content
    assert b"libc6-dev" not in content
    assert b"Package: libc6\n" in content
    assert b"Package: musl\n" in content


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/usr/lib/python3.11/os.py", Presence),
        ("/usr/local/lib/python3.12/os.py", Presence),
        ("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", Presence),
        ("/usr/lib64/libpython3.9.so.1.0", Presence),
        ("/usr/local/include/node/node_version.h", Keep),
        ("/usr/local/bin/node", Search),
        ("/nodejs/bin/node", Search),
        ("/opt/java/openjdk/release", Keep),
        ("/usr/lib/jvm/java-17-openjdk-amd64/release", Keep),
        ("/ko-app/manager", Search),
        ("/usr/local/go/bin/go", Search),
        ("/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/Microsoft.NETCore.App.deps.json", Presence),
    ],
)
def test_runtime_evidence_is_captured(path: str, kind: type) -> None:
    assert isinstance(capture_rule(path), kind)


def test_package_databases_keep_runtime_stanzas_up_to_a_bound() -> None:
    rule = capture_rule("/var/lib/dpkg/status")
    assert isinstance(rule, Stanzas)
    collector = collector_for("/var/lib/dpkg/status", rule)
    names = [b"python3.11-minimal", b"nodejs", b"bash", b"openjdk-17-jre-headless", b"libc6"]
    names += [f"python3.{n}".encode() for n in range(100, 200)]  # a hostile list of "runtimes"
    collector.add(memoryview(b"".join(b"Package: " + n + b"\nVersion: 1\n\n" for n in names)))
    kept = [line.removeprefix(b"Package: ") for line in (collector.result() or b"").split(b"\n")]
    kept = [name for name in kept if name and not name.startswith(b"Version")]
    assert kept[:4] == [b"python3.11-minimal", b"nodejs", b"openjdk-17-jre-headless", b"libc6"]
    assert b"bash" not in kept
    assert len(kept) == 1 + MAX_PATTERN_STANZAS  # libc6 by name; the pattern's matches up to the bound
