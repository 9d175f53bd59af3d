"""rpm databases in all three formats, made by real rpm and Berkeley DB tools (or taken from real images),
read by our own readers: what they say must be what rpm itself says."""

from __future__ import annotations

import shutil
import sqlite3
import struct
from pathlib import Path

import pytest
from scan_trees import image

from distroguard.scan.capture import RPM_DB_BYTES, RpmDatabase, capture_rule
from distroguard.scan.collect import RpmDatabaseCollector
from distroguard.scan.libc import detect_libc, libc_decided
from distroguard.scan.osrelease import detect_os
from distroguard.scan.rpm import bdb
from distroguard.scan.rpm.header import parse_header
from distroguard.scan.rpm.packages import RpmSummary, summarize
from support.distros import ELF, os_release
from support.images import Symlink
from support.rpm_databases import (
    Package,
    bdb_database,
    build_rpm,
    exported_headers,
    go_rpmdb_testdata,
    rpm_packages,
    sqlite_database,
)

PACKAGES = (
    # Named and versioned as RHEL 9's; glibc owns ~400 files, which makes its header ~40 KB, as real ones.
    Package("glibc", "2.34", "100.el9_4.2", files=400),
    Package("python3.11", "3.11.7", "1.el9", files=200),
    Package("nodejs", "20.11.1", "1.module+el9.3.0+21283+f4bd3a50", epoch=1),
    Package("java-21-openjdk-headless", "21.0.5.0.11", "2.el9", epoch=1),
    Package("bash", "5.1.8", "9.el9"),
)
WANTED = {"glibc", "python3.11", "nodejs", "java-21-openjdk-headless"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the working directory, the root rpm installed every package into, sqlite database)."""
    workdir = tmp_path_factory.mktemp("rpm")
    rpms = [build_rpm(workdir, package) for package in PACKAGES]
    return workdir, sqlite_database(workdir, rpms)


def _sqlite(root: Path) -> bytes:
    return (root / "var/lib/rpm/rpmdb.sqlite").read_bytes()


def _evr(summary: RpmSummary, name: str) -> str | None:
    found = summary.find(name)
    return found.evr if found else None


def test_a_sqlite_database_written_by_rpm_reads_as_rpm_reads_it(built: tuple[Path, Path]) -> None:
    _, root = built
    summary = summarize(_sqlite(root))
    assert (summary.format, summary.headers, summary.unreadable, summary.error) == ("sqlite", 5, 0, None)
    assert {p.name for p in summary.packages} == WANTED  # bash is not kept
    listed = rpm_packages(root, "sqlite")
    for name in WANTED:
        assert {_evr(summary, name)} == listed[name]
    assert _evr(summary, "nodejs") == "1:20.11.1-1.module+el9.3.0+21283+f4bd3a50"


@pytest.mark.parametrize(("page_size", "order"), [(4096, "<"), (512, "<"), (4096, ">"), (65536, "<")])
def test_a_berkeley_db_hash_of_rpms_headers_reads_as_rpm_reads_it(
    built: tuple[Path, Path], page_size: int, order: str
) -> None:
    """Small pages make every header a chain of many overflow pages; big-endian files are read too."""
    workdir, root = built
    blobs = exported_headers(root)
    bdb_root = bdb_database(workdir, blobs, page_size=page_size, order=order)
    summary = summarize((bdb_root / "var/lib/rpm/Packages").read_bytes())
    assert (summary.format, summary.headers, summary.unreadable, summary.error) == ("bdb", 5, 0, None)
    listed = rpm_packages(bdb_root, "bdb_ro")
    assert sum(len(evrs) for evrs in listed.values()) == 5
    for name in WANTED:
        assert {_evr(summary, name)} == listed[name]


@pytest.fixture(scope="module")
def real_databases() -> Path:
    return go_rpmdb_testdata()


def test_suses_ndb_database_from_a_real_image(real_databases: Path) -> None:
    summary = summarize((real_databases / "sle15-bci" / "Packages.db").read_bytes())
    assert (summary.format, summary.unreadable, summary.error) == ("ndb", 0, None)
    assert summary.headers == 35  # the SLE 15 BCI image's package count, as the module's own test lists
    assert _evr(summary, "glibc") == "2.31-9.3.2"  # as the module's own test case lists it


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("centos5-plain/Packages", "bdb_ro"),
        ("centos6-many/Packages", "bdb_ro"),
        ("centos7-python35/Packages", "bdb_ro"),
        ("centos8-modularitylabel/Packages", "bdb_ro"),
        ("ubi8-s390x/Packages", "bdb_ro"),
        ("fedora35/rpmdb.sqlite", "sqlite"),
        ("cbl-mariner-2.0/rpmdb.sqlite", "sqlite"),
    ],
)
def test_real_images_databases_read_as_rpm_reads_them(
    real_databases: Path, tmp_path: Path, name: str, backend: str
) -> None:
    source = real_databases / name
    directory = tmp_path / "var" / "lib" / "rpm"
    directory.mkdir(parents=True)
    shutil.copyfile(source, directory / source.name)
    summary = summarize(source.read_bytes())
    assert summary.complete, summary
    listed = rpm_packages(tmp_path, backend)
    assert summary.headers == sum(len(evrs) for evrs in listed.values())
    for package in summary.packages:
        assert package.evr in listed[package.name]
    assert summary.find("glibc") is not None


# -- in an image ----------------------------------------------------------------------------------

UBI9_OS_RELEASE = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'


def _detect(files: dict[str, object]) -> tuple[str, str | None, list[str], bool]:
    tree = image(files)  # type: ignore[arg-type]
    os, _ = detect_os(tree)
    libc, evidence = detect_libc(tree, os)
    return (
        libc.family,
        libc.version,
        [f"{e.source}:{e.path}:{e.detail}" for e in evidence],
        libc_decided(tree),
    )


def test_an_image_updated_in_place_gets_glibc_from_its_rpm_database(built: tuple[Path, Path]) -> None:
    """UBI 9.4's table entry says glibc 2.34; the package database says which build, and is the evidence."""
    _, root = built
    family, version, evidence, decided = _detect(
        {
            "/etc/os-release": os_release(UBI9_OS_RELEASE),
            "/lib64": Symlink("usr/lib64"),
            "/usr/lib64/ld-linux-x86-64.so.2": ELF,
            "/var/lib/rpm": Symlink("../../usr/lib/sysimage/rpm"),
            "/usr/lib/sysimage/rpm/rpmdb.sqlite": _sqlite(root),
        }
    )
    assert (family, version) == ("glibc", "2.34")
    assert evidence == [
        "package-db:/usr/lib/sysimage/rpm/rpmdb.sqlite:rpm (sqlite): glibc 2.34-100.el9_4.2 x86_64"
    ]
    assert decided


def test_a_database_without_glibc_is_a_static_image(built: tuple[Path, Path], tmp_path: Path) -> None:
    workdir, _ = built
    only_bash = sqlite_database(tmp_path, [build_rpm(tmp_path, PACKAGES[-1])])
    family, _, evidence, _ = _detect({"/var/lib/rpm/rpmdb.sqlite": _sqlite(only_bash)})
    assert family == "none"
    assert evidence == [
        "package-db:/var/lib/rpm/rpmdb.sqlite:rpm (sqlite) database lists no C library: static image"
    ]
    assert workdir.is_dir()


# -- broken and hostile databases -----------------------------------------------------------------


def _bdb_bytes(built: tuple[Path, Path], page_size: int = 512) -> bytearray:
    workdir, root = built
    bdb_root = bdb_database(workdir, exported_headers(root), page_size=page_size)
    return bytearray((bdb_root / "var/lib/rpm/Packages").read_bytes())


def _overflow_pages(data: bytearray, page_size: int) -> list[int]:
    return [n for n in range(1, len(data) // page_size) if data[n * page_size + 25] == 7]


def test_a_truncated_berkeley_db_is_refused_naming_the_truncation(built: tuple[Path, Path]) -> None:
    data = _bdb_bytes(built)
    summary = summarize(bytes(data[: len(data) // 2]))
    assert summary.error is not None
    assert "truncated" in summary.error
    assert not summary.complete


def test_a_loop_in_an_overflow_chain_ends_with_an_error(built: tuple[Path, Path]) -> None:
    data = _bdb_bytes(built)
    pages = [n for n in _overflow_pages(data, 512) if struct.unpack_from("<I", data, n * 512 + 16)[0] != 0]
    looped = pages[len(pages) // 2]
    struct.pack_into("<I", data, looped * 512 + 16, looped)  # its next page is itself
    summary = summarize(bytes(data))
    assert summary.error is not None
    assert f"loops at page {looped}" in summary.error


def test_values_that_all_share_one_long_chain_run_out_of_page_reads(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No loop, but every value pointing at the longest chain: the reads are bounded by the file's size.
    (With 5 packages the fan-out is 5; the budget is lowered to one read per page to show the bound.)"""
    data = _bdb_bytes(built)
    references = []
    for number in range(1, len(data) // 512):
        start = number * 512
        if data[start + 25] != 13:
            continue
        entries = struct.unpack_from("<H", data, start + 20)[0]
        for index in range(1, entries, 2):
            item = start + struct.unpack_from("<H", data, start + 26 + 2 * index)[0]
            if data[item] == 3:
                references.append(item)
    longest = max(references, key=lambda item: struct.unpack_from("<I", data, item + 8)[0])
    assert summarize(bytes(data)).complete
    for item in references:
        data[item + 4 : item + 12] = data[longest + 4 : longest + 12]
    monkeypatch.setattr(bdb, "VISITS_PER_PAGE", 1)
    summary = summarize(bytes(data))
    assert summary.error is not None
    assert "too many page reads" in summary.error


def test_a_header_claiming_a_huge_index_is_unreadable_not_a_crash() -> None:
    huge = struct.pack(">ii", 0x7FFFFFFF, 16) + bytes(16)
    with pytest.raises(ValueError, match="index entries"):
        parse_header(huge)
    claims_more = struct.pack(">ii", 1000, 16) + bytes(64)
    with pytest.raises(ValueError, match="more than its 72 bytes"):
        parse_header(claims_more)


def test_huge_header_counts_in_a_real_database_count_as_unreadable(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, root = built
    data = _sqlite(root)
    copy = tmp_path / "rpmdb.sqlite"
    copy.write_bytes(data)
    with sqlite3.connect(copy) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute(
            "UPDATE Packages SET blob = ? WHERE hnum = (SELECT MIN(hnum) FROM Packages)",
            (struct.pack(">ii", 0xFFFFFF, 0x0FFFFFFF) + bytes(64),),
        )
    summary = summarize(copy.read_bytes())
    assert (summary.headers, summary.unreadable) == (5, 1)
    assert not summary.complete
    assert "index entries" in summary.notes[0]
    family, _, evidence, _ = _detect({"/var/lib/rpm/rpmdb.sqlite": copy.read_bytes()})
    # glibc was still read, so it decides; the evidence says one header was not.
    assert family == "glibc"
    assert any("1 of 5 headers unreadable" in line for line in evidence)


def test_a_sqlite_database_whose_packages_is_a_runaway_view_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "rpmdb.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE VIEW Packages AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT zeroblob(64) AS blob FROM n"
        )
    summary = summarize(path.read_bytes())
    assert summary.error == "the SQLite database has no Packages table"
    with sqlite3.connect(path) as connection:
        connection.execute("DROP VIEW Packages")
        connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
        connection.execute("CREATE TABLE n (i)")
        connection.execute(
            "CREATE TRIGGER t AFTER INSERT ON n BEGIN INSERT INTO Packages (blob) VALUES (zeroblob(8)); END"
        )
        connection.executemany("INSERT INTO Packages (blob) VALUES (zeroblob(20))", [()] * 3)
    summary = summarize(path.read_bytes())
    assert (summary.headers, summary.unreadable, summary.error) == (3, 3, None)


def test_a_truncated_sqlite_database_is_an_error_with_evidence(built: tuple[Path, Path]) -> None:
    _, root = built
    data = _sqlite(root)
    summary = summarize(data[: len(data) // 3])
    assert summary.error is not None
    assert summary.error.startswith("the SQLite database cannot be read")
    family, version, evidence, _ = _detect(
        {"/etc/os-release": os_release(UBI9_OS_RELEASE), "/var/lib/rpm/rpmdb.sqlite": data[: len(data) // 3]}
    )
    assert (family, version) == ("glibc", "2.34")  # the release table, since the database says nothing
    assert evidence[-1].startswith("package-db:/var/lib/rpm/rpmdb.sqlite:rpm database not read (sqlite)")


def test_an_ndb_database_claiming_more_slot_pages_than_it_has_is_refused(real_databases: Path) -> None:
    data = bytearray((real_databases / "sle15-bci" / "Packages.db").read_bytes())
    struct.pack_into("<I", data, 12, 0xFFFFFF)
    summary = summarize(bytes(data))
    assert summary.error is not None
    assert "slot pages" in summary.error
    data = bytearray((real_databases / "sle15-bci" / "Packages.db").read_bytes())
    data[len(data) // 2 :] = b""
    assert summarize(bytes(data)).error is not None


def test_a_database_over_the_bound_is_not_read_and_says_so() -> None:
    rule = capture_rule("/var/lib/rpm/Packages")
    assert rule == RpmDatabase(RPM_DB_BYTES)
    collector = RpmDatabaseCollector(1024)
    collector.add(memoryview(bytes(800)))
    collector.add(memoryview(bytes(800)))
    summary = RpmSummary.loads(collector.result())
    assert summary.error == "the database is larger than 1024 bytes: not read"
    declared = RpmDatabaseCollector(1024, declared_size=4096)  # its tar header says so: nothing is kept
    declared.add(memoryview(bytes(1000)))
    assert RpmSummary.loads(declared.result()).error == summary.error


def test_garbage_where_a_database_should_be() -> None:
    assert summarize(b"\x00" * 4096).error == "not an rpm database in any known format (sqlite, bdb, ndb)"
    assert not bdb.is_bdb_hash(b"short")
