"""`detect_libc` and `libc_decided` on image roots laid out like the real images, traps first."""

from __future__ import annotations

import pytest
from scan_trees import image

from distroguard.model import OSRelease
from distroguard.scan.libc import detect_libc, libc_decided
from distroguard.scan.osrelease import detect_os
from distroguard.scan.tree import FileTree
from support.distros import (
    ALPINE_GCOMPAT_ROOT,
    ALPINE_ROOT,
    DEBIAN_12,
    DEBIAN_12_ROOT,
    DISTROLESS_STATIC_ROOT,
    ELF,
    RHEL_GLIBC,
    UBUNTU_2404,
    UBUNTU_MUSL_ROOT,
    WOLFI,
    Files,
    apk,
    banner,
    database,
    distroless_status,
    dpkg,
    os_release,
)
from support.images import Symlink as Link


def detect(files: Files) -> tuple[str, str | None, FileTree, list[str]]:
    tree = image(files)
    os, _ = detect_os(tree)
    libc, evidence = detect_libc(tree, os)
    return libc.family, libc.version, tree, [f"{e.source}:{e.path}:{e.detail}" for e in evidence]


def test_debian_from_dpkg() -> None:
    family, version, tree, evidence = detect(DEBIAN_12_ROOT)
    assert (family, version) == ("glibc", "2.36")
    assert evidence[0].startswith("package-db:/var/lib/dpkg/status:dpkg: libc6 2.36-9+deb12u4")
    assert libc_decided(tree)


def test_debian_from_the_banner_when_dpkg_is_gone() -> None:
    files = {k: v for k, v in DEBIAN_12_ROOT.items() if not k.startswith("/var/lib/dpkg")}
    family, version, _, evidence = detect(files)
    assert (family, version) == ("glibc", "2.36")
    assert evidence[0].startswith("file:/usr/lib/x86_64-linux-gnu/libc.so.6:glibc banner")


# -- the traps ------------------------------------------------------------------------------------


def test_trap_gcompat_on_alpine_is_musl() -> None:
    """gcompat/libc6-compat put glibc's names on disk; they are shims over musl."""
    files = ALPINE_GCOMPAT_ROOT
    family, version, tree, evidence = detect(files)
    assert (family, version) == ("musl", "1.2.4")
    assert any("gcompat" in e for e in evidence)
    assert libc_decided(tree)


def test_trap_gcompat_on_alpine_without_the_apk_database_is_still_musl() -> None:
    files: Files = {
        **{k: v for k, v in ALPINE_ROOT.items() if "apk" not in k},
        "/lib/ld-linux-x86-64.so.2": Link("/lib/ld-musl-x86_64.so.1"),
        "/lib/libc.so.6": ELF + b"not glibc, no banner",
    }
    family, version, _, evidence = detect(files)
    assert family == "musl"
    # The files say musl but not which musl; Alpine 3.19's table row does.
    assert version == "1.2.4"
    assert any(e.startswith("table:None:musl version shipped by Alpine Linux 3.19") for e in evidence)
    assert any("shim" in e for e in evidence)


def test_trap_musl_package_on_ubuntu_is_glibc() -> None:
    """Ubuntu's `musl` package adds a musl loader for musl-built programs; the system is glibc."""
    files = UBUNTU_MUSL_ROOT
    family, version, _, evidence = detect(files)
    assert (family, version) == ("glibc", "2.39")
    assert any("musl 1.2.4-2 too" in e for e in evidence)
    # And the same from the files alone: the banner outweighs the musl loader.
    without_dpkg = image({k: v for k, v in files.items() if "dpkg" not in k})
    libc, file_evidence = detect_libc(without_dpkg, detect_os(without_dpkg)[0])
    assert (libc.family, libc.version) == ("glibc", "2.39")
    assert any("musl" in e.detail for e in file_evidence)


def test_trap_distroless_static_has_no_libc() -> None:
    """Debian os-release, status.d without libc6, no libc file: none, not the table's glibc."""
    files = DISTROLESS_STATIC_ROOT
    family, version, tree, evidence = detect(files)
    assert (family, version) == ("none", None)
    assert evidence[0].startswith("package-db:/var/lib/dpkg/status.d/")
    assert not any(e.startswith("table") for e in evidence)
    assert libc_decided(tree)


def test_distroless_base_has_glibc_from_status_d() -> None:
    files: Files = {
        "/etc/os-release": os_release('PRETTY_NAME="Distroless"\nID="debian"\nVERSION_ID="12"\n'),
        "/var/lib/dpkg/status.d/base-files": distroless_status("base-files", "12.4+deb12u5"),
        "/var/lib/dpkg/status.d/libc6": distroless_status("libc6", "2.36-9+deb12u7"),
        "/var/lib/dpkg/status.d/libc6.md5sums": b"0123  lib/x86_64-linux-gnu/libc.so.6\n",
    }
    family, version, _, evidence = detect(files)
    assert (family, version) == ("glibc", "2.36")
    assert evidence[0].startswith("package-db:/var/lib/dpkg/status.d/libc6:")


def test_trap_scratch_has_nothing() -> None:
    family, version, tree, evidence = detect({})
    assert (family, version) == ("none", None)
    assert evidence[0].startswith("scan:")
    assert not libc_decided(tree)


def test_scratch_with_a_static_binary() -> None:
    family, _, tree, _ = detect({"/app/server": ELF, "/etc/ssl/certs/ca.pem": b"cert"})
    assert family == "none"
    assert not libc_decided(tree)


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {
                "/etc/os-release": WOLFI,
                "/lib/apk/db/installed": database(
                    apk("wolfi-baselayout", "20230201-r15"), apk("ca-certificates-bundle", "1-r0")
                ),
            },
            id="apk-chainguard-static",
        ),
        pytest.param(
            {
                "/etc/os-release": DEBIAN_12,
                "/var/lib/dpkg/status": database(dpkg("base-files", "12.4"), dpkg("tzdata", "1")),
            },
            id="dpkg-status",
        ),
        pytest.param(
            {
                "/etc/os-release": DEBIAN_12,
                "/var/lib/dpkg/status": database(
                    dpkg("libc6", "2.36-9", "deinstall ok config-files"), dpkg("tzdata", "1")
                ),
            },
            id="dpkg-libc6-removed",
        ),
    ],
)
def test_trap_a_package_database_listing_no_libc_is_none(files: Files) -> None:
    family, version, tree, evidence = detect(files)
    assert (family, version) == ("none", None)
    assert "lists no C library" in evidence[0]
    assert libc_decided(tree)


# -- other distributions --------------------------------------------------------------------------


def test_alpine_from_apk() -> None:
    family, version, tree, evidence = detect(ALPINE_ROOT)
    assert (family, version) == ("musl", "1.2.4")
    assert evidence[0] == "package-db:/lib/apk/db/installed:apk: musl 1.2.4_git20230717-r4"
    assert libc_decided(tree)


def test_alpine_with_a_glibc_package_beside_musl_stays_musl() -> None:
    files: Files = {
        **ALPINE_ROOT,
        "/lib/apk/db/installed": database(apk("musl", "1.2.5-r0"), apk("glibc", "2.35-r1")),
        "/usr/glibc-compat/lib/libc.so.6": RHEL_GLIBC,  # not a system directory: not looked at
    }
    family, version, _, evidence = detect(files)
    assert (family, version) == ("musl", "1.2.5")
    assert any("glibc 2.35-r1 too" in e for e in evidence)


def test_wolfi_from_apk_glibc() -> None:
    files: Files = {
        "/etc/os-release": WOLFI,
        "/lib/ld-linux-x86-64.so.2": ELF,
        "/lib/libc.so.6": banner("GNU C Library (GNU libc) stable release version 2.40."),
        "/usr/lib/apk/db/installed": database(apk("glibc", "2.40-r3"), apk("ld-linux", "2.40-r3")),
    }
    family, version, _, evidence = detect(files)
    assert (family, version) == ("glibc", "2.40")
    assert evidence[0].startswith("package-db:/usr/lib/apk/db/installed:apk: glibc")


def test_rhel_from_the_banner() -> None:
    """The Red Hat family with an rpm database that cannot be read: the banner says it, the evidence says
    the database was not read (real databases: test_rpm_databases)."""
    files: Files = {
        "/etc/os-release": os_release('ID="rhel"\nVERSION_ID="9.4"\n'),
        "/lib64": Link("usr/lib64"),
        "/usr/lib64/libc.so.6": RHEL_GLIBC,
        "/usr/lib64/ld-linux-x86-64.so.2": ELF,
        "/var/lib/rpm/rpmdb.sqlite": b"SQLite format 3\x00",
    }
    family, version, tree, evidence = detect(files)
    assert (family, version) == ("glibc", "2.34")
    assert evidence[0] == "file:/usr/lib64/libc.so.6:glibc banner: release version 2.34"
    assert evidence[1].startswith("package-db:/var/lib/rpm/rpmdb.sqlite:rpm database not read (sqlite)")
    assert len(evidence) == 2
    assert libc_decided(tree)


def test_centos_7_from_versioned_file_names() -> None:
    files: Files = {
        "/usr/lib64/libc-2.17.so": ELF,
        "/usr/lib64/libc.so.6": Link("libc-2.17.so"),
        "/usr/lib64/ld-2.17.so": ELF,
        "/usr/lib64/ld-linux-x86-64.so.2": Link("ld-2.17.so"),
    }
    family, version, _, evidence = detect(files)
    assert (family, version) == ("glibc", "2.17")
    assert evidence[0].startswith("file:/usr/lib64/")
    assert "2.17" in evidence[0]


def test_a_loader_gives_the_family_and_the_table_the_version() -> None:
    files: Files = {"/etc/os-release": DEBIAN_12, "/lib64/ld-linux-x86-64.so.2": ELF}
    family, version, tree, evidence = detect(files)
    assert (family, version) == ("glibc", "2.36")
    assert evidence[0].startswith("file:/lib64/ld-linux-x86-64.so.2:")
    assert evidence[1] == "table:None:glibc version shipped by Debian 12"
    assert libc_decided(tree)


def test_the_table_alone_when_no_file_says_anything() -> None:
    tree = image({"/etc/os-release": UBUNTU_2404})
    os, _ = detect_os(tree)
    libc, evidence = detect_libc(tree, os)
    assert (libc.family, libc.version) == ("glibc", "2.39")
    assert {e.source for e in evidence} == {"table"}
    assert [e.fact for e in evidence] == ["libc", "libc.version"]
    assert not libc_decided(tree)


def test_a_libc_bundled_outside_the_system_directories_is_ignored() -> None:
    files: Files = {
        "/etc/os-release": DEBIAN_12,
        "/opt/app/lib/libc.so.6": banner("GNU C Library (GNU libc) stable release version 2.40."),
        "/opt/app/lib/ld-linux-x86-64.so.2": ELF,
    }
    family, version, tree, _ = detect(files)
    assert (family, version) == ("glibc", "2.36")
    assert not libc_decided(tree)


def test_an_unknown_distribution_without_files_is_unknown() -> None:
    family, version, tree, _ = detect({"/etc/os-release": b"ID=my-distro\nVERSION_ID=1\n"})
    assert (family, version) == ("unknown", None)
    assert not libc_decided(tree)


def test_a_derivative_gets_its_family_from_id_like() -> None:
    family, version, _, _ = detect({"/etc/os-release": b"ID=echo\nID_LIKE=debian\nVERSION_ID=1\n"})
    assert (family, version) == ("glibc", None)


def test_release_files_naming_nothing_are_unknown_not_none() -> None:
    family, _, _, _ = detect({"/etc/os-release": b'NAME="Alpine Linux"\nVERSION_ID=3.15.4\n'})
    assert family == "unknown"


def test_the_table_version_is_not_used_for_another_family() -> None:
    # A Debian release with only a musl loader: musl, and Debian's glibc version does not apply.
    files: Files = {"/etc/os-release": DEBIAN_12, "/lib/ld-musl-x86_64.so.1": ELF}
    assert detect(files)[:2] == ("musl", None)


def test_detect_libc_without_an_os() -> None:
    libc, _ = detect_libc(image(ALPINE_ROOT), None)
    assert (libc.family, libc.version) == ("musl", "1.2.4")
    libc, _ = detect_libc(image({"/lib/ld-musl-x86_64.so.1": ELF}), None)
    assert (libc.family, libc.version) == ("musl", None)


def test_evidence_of_a_package_database_names_its_layer() -> None:
    tree = image(DEBIAN_12_ROOT)
    _, evidence = detect_libc(tree, OSRelease(id="debian", version_id="12"))
    assert evidence[0].layer is not None
