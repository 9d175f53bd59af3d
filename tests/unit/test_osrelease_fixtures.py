"""OS detection against every image root of the vendored os-release corpus, one case per directory.

INDEX.tsv says, for each directory, the ID / VERSION_ID / codename a correct parser derives and
the libc family of the distribution. An empty expected ID means "no result": the `_symlink-*`
escapes and loops, and the `_edge-*` files without an ID. Those rows still state the VERSION_ID
their file carries; it is checked on the parsed file, since without an ID there is no OSRelease to
hold it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
from scan_trees import Link, image, image_from_dir

from distroguard.scan.capture import OS_RELEASE_PATHS
from distroguard.scan.libc import detect_libc
from distroguard.scan.osrelease import detect_os, parse_os_release

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "os-release"


@dataclass(frozen=True)
class Row:
    dir: str
    source: str
    id: str
    version_id: str
    codename: str
    libc: str
    notes: str


def _rows() -> list[Row]:
    with (CORPUS / "INDEX.tsv").open(newline="") as index:
        reader = csv.DictReader(index, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            Row(
                dir=r["dir"],
                source=r["source"],
                id=r["expected_ID"],
                version_id=r["expected_VERSION_ID"],
                codename=r["expected_codename"],
                libc=r["libc"],
                notes=r["notes"],
            )
            for r in reader
        ]


ROWS = _rows()


def test_the_index_lists_every_directory_once() -> None:
    listed = [row.dir for row in ROWS]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


@pytest.mark.parametrize("row", ROWS, ids=[row.dir for row in ROWS])
def test_fixture(row: Row) -> None:
    tree = image_from_dir(CORPUS / row.dir)
    os, evidence = detect_os(tree)

    if not row.id:
        assert os is None, row.notes
        if row.version_id:
            # The file is there and says VERSION_ID, but names no ID: no result, not a guess.
            contents = [tree.read(p) for p in OS_RELEASE_PATHS]
            parsed = [parse_os_release(found.content) for found in contents if found is not None]
            assert any(f.get("VERSION_ID") == row.version_id for f in parsed)
        return

    assert os is not None, row.notes
    assert (os.id, os.version_id or "", os.codename or "") == (
        row.id,
        row.version_id,
        row.codename,
    ), row.notes
    # The evidence names a file that really is in the image, by its resolved path.
    main = [e for e in evidence if e.fact == "os" and e.source == "file"]
    assert main, evidence
    assert tree.read(main[0].path or "") is not None
    assert all(e.layer is not None for e in main)

    if row.libc in ("glibc", "musl"):
        libc, libc_evidence = detect_libc(tree, os)
        assert libc.family == row.libc, (libc, libc_evidence)
        # These roots hold no C library files: the family can only have come from the table.
        assert {e.source for e in libc_evidence} == {"table"}


# -- the corrections the corpus does not show on its own ------------------------------------------

DEBIAN_12 = b'ID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'


def test_debian_point_release_is_evidence_not_version() -> None:
    tree = image({"/etc/os-release": DEBIAN_12, "/etc/debian_version": b"12.5\n"})
    os, evidence = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id, os.codename) == ("debian", "12", "bookworm")
    assert any(e.path == "/etc/debian_version" and "12.5" in e.detail for e in evidence)


def test_debian_version_fills_a_missing_version_id() -> None:
    tree = image(
        {
            "/etc/os-release": b'PRETTY_NAME="Distroless"\nID="debian"\n',
            "/etc/debian_version": b"10.8\n",
        }
    )
    os, evidence = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("debian", "10.8")
    assert any("distroless" in e.detail for e in evidence)


def test_distroless_keeps_id_debian_and_says_so() -> None:
    tree = image(
        {
            "/etc/os-release": b'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\n'
            b'VERSION_ID="12"\nVERSION="Debian GNU/Linux 12 (bookworm)"\n'
        }
    )
    os, evidence = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id, os.codename, os.pretty_name) == (
        "debian",
        "12",
        "bookworm",
        "Distroless",
    )
    assert any(e.fact == "os" and "distroless" in e.detail for e in evidence)


def test_centos_stream_is_told_apart_from_centos_linux() -> None:
    stream = image({"/etc/os-release": b'NAME="CentOS Stream"\nID="centos"\nVERSION_ID="9"\n'})
    linux = image({"/etc/os-release": b'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n'})
    stream_os, stream_evidence = detect_os(stream)
    linux_os, linux_evidence = detect_os(linux)
    assert stream_os is not None
    assert stream_os.id == "centos"
    assert linux_os is not None
    assert linux_os.id == "centos"
    assert any("CentOS Stream" in e.detail for e in stream_evidence)
    assert not any("CentOS Stream" in e.detail for e in linux_evidence)


def test_centos_stream_from_centos_release() -> None:
    os, evidence = detect_os(image({"/etc/centos-release": b"CentOS Stream release 9\n"}))
    assert os is not None
    assert (os.id, os.version_id) == ("centos", "9")
    assert any("CentOS Stream" in e.detail for e in evidence)


def test_oracle_release_wins_over_its_redhat_release() -> None:
    tree = image(
        {
            "/etc/redhat-release": b"Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
            "/etc/oracle-release": b"Oracle Linux Server release 7.9\n",
            "/etc/system-release": Link("oracle-release"),
        }
    )
    os, evidence = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("ol", "7.9")
    assert evidence[0].path == "/etc/oracle-release"
    assert any(e.path == "/etc/redhat-release" and "ignored" in e.detail for e in evidence)


def test_wolfi() -> None:
    tree = image({"/etc/os-release": b'ID=wolfi\nNAME="Wolfi"\nVERSION_ID="20230201"\n'})
    os, _ = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("wolfi", "20230201")
    libc, _ = detect_libc(tree, os)
    assert (libc.family, libc.version) == ("glibc", None)


def test_etc_os_release_without_id_falls_back_to_usr_lib() -> None:
    tree = image(
        {
            "/etc/os-release": b'NAME="Broken"\n',
            "/usr/lib/os-release": b"ID=fedora\nVERSION_ID=40\n",
        }
    )
    os, evidence = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("fedora", "40")
    assert any(e.path == "/etc/os-release" and "ignored" in e.detail for e in evidence)


def test_lsb_release_of_another_distribution_gives_no_codename() -> None:
    tree = image(
        {
            "/etc/os-release": b'ID=ubuntu\nVERSION_ID="14.04"\nVERSION="14.04.3 LTS"\n',
            "/etc/lsb-release": b"DISTRIB_ID=LinuxMint\nDISTRIB_CODENAME=rosa\n",
        }
    )
    os, _ = detect_os(tree)
    assert os is not None
    assert os.codename is None


def test_suse_release_alone() -> None:
    tree = image(
        {"/etc/SuSE-release": b"SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 3\n"}
    )
    os, _ = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("sles", "12.3")


def test_oracle_cpe_carries_the_minor_release_as_update() -> None:
    tree = image({"/etc/system-release-cpe": b"cpe:/o:oracle:linux:7:5:server\n"})
    os, _ = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("ol", "7.5")


def test_alpine_release_alone() -> None:
    os, _ = detect_os(image({"/etc/alpine-release": b"3.19.1\n"}))
    assert os is not None
    assert (os.id, os.version_id) == ("alpine", "3.19.1")


def test_busybox_hard_linked_from_bracket() -> None:
    """The busybox image stores the binary as `bin/[`; the streamer copies it to its hard links."""
    banner = b"\x7fELF" + b"\x00" * 300 + b"BusyBox v1.36.1 (2023-07-27) multi-call binary.\x00"
    tree = image({"/bin/[": banner})
    node = tree.get("/bin/[")
    assert node is not None
    tree.put("/bin/busybox", node)  # what the streamer does for a hard link to a kept file
    os, _ = detect_os(tree)
    assert os is not None
    assert (os.id, os.version_id) == ("busybox", "1.36.1")


def test_nothing_at_all() -> None:
    assert detect_os(image({"/app/server": b"\x7fELF"})) == (None, [])
