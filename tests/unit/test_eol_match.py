"""Matching an image's OS and runtimes to endoflife.date cycles, against the bundled snapshot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.eol.products import OS_PRODUCTS, ROLLING
from distroguard.model import OSRelease, Runtime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "os-release" / "INDEX.tsv"


@pytest.fixture(scope="module")
def catalog() -> EolCatalog:
    return EolCatalog(bundled_snapshot())


OS_CASES = [
    # (id, VERSION_ID, pretty name, status, product, cycle)
    ("alpine", "3.19.1", None, "matched", "alpine-linux", "3.19"),
    ("alpine", "3.9.6", None, "matched", "alpine-linux", "3.9"),
    ("alpine", "3.22.0_alpha20250108", "Alpine Linux edge", "unknown-cycle", "alpine-linux", None),
    ("alpine", "3.99.0", None, "unknown-cycle", "alpine-linux", None),
    ("debian", "12", None, "matched", "debian", "12"),
    ("debian", "12.5", None, "matched", "debian", "12"),
    ("debian", "13", None, "matched", "debian", "13"),
    ("debian", None, None, "unknown-cycle", "debian", None),  # testing / sid
    ("debian", "12", "Distroless", "matched", "debian", "12"),
    ("ubuntu", "22.04", None, "matched", "ubuntu", "22.04"),
    ("ubuntu", "23.10", None, "matched", "ubuntu", "23.10"),
    ("rhel", "9.4", None, "matched", "rhel", "9"),
    ("rhel", "8.10", None, "matched", "rhel", "8"),
    ("rocky", "9.3", None, "matched", "rocky-linux", "9"),
    ("almalinux", "10.0", None, "matched", "almalinux", "10"),
    ("ol", "8.10", None, "matched", "oracle-linux", "8"),
    ("amzn", "2", None, "matched", "amazon-linux", "2"),
    ("amzn", "2023", None, "matched", "amazon-linux", "2023"),
    ("amzn", "2018.03", None, "matched", "amazon-linux", "2018.03"),
    ("centos", "7", "CentOS Linux 7 (Core)", "matched", "centos", "7"),
    ("centos", "8", "CentOS Linux 8", "matched", "centos", "8"),
    ("centos", "8", "CentOS Stream 8", "matched", "centos-stream", "8"),
    ("centos", "9", "CentOS Stream 9", "matched", "centos-stream", "9"),
    ("fedora", "42", None, "matched", "fedora", "42"),
    ("opensuse-leap", "15.5", None, "matched", "opensuse", "15.5"),
    ("opensuse", "42.3", None, "matched", "opensuse", "42.3"),
    ("sles", "15.5", None, "matched", "sles", "15.5"),
    ("sles", "15", None, "matched", "sles", "15.0"),
    ("sles", "12.1", None, "matched", "sles", "12.1"),
    ("sl-micro", "6.0", None, "matched", "suse-linux-micro", "6.0"),
    ("photon", "4.0", None, "matched", "vmware-photon", "4.0"),
    ("wolfi", "20230201", None, "rolling", None, None),
    ("chainguard", "20230214", None, "rolling", None, None),
    ("arch", None, None, "rolling", None, None),
    ("opensuse-tumbleweed", "20220412", None, "rolling", None, None),
    ("opensuse", "20160917", "openSUSE Tumbleweed", "rolling", None, None),
    ("azurelinux", "3.0", None, "unknown-product", None, None),
    (
        "raspbian",
        "9",
        None,
        "unknown-product",
        None,
        None,
    ),  # ID_LIKE=debian is not Debian's lifecycle
    ("my-awesome-distro", "8", None, "unknown-product", None, None),
]


@pytest.mark.parametrize(
    ("os_id", "version", "pretty", "status", "product", "cycle"),
    OS_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2] or ''}" for c in OS_CASES],
)
def test_os_to_cycle(
    catalog: EolCatalog,
    os_id: str,
    version: str | None,
    pretty: str | None,
    status: str,
    product: str | None,
    cycle: str | None,
) -> None:
    found = catalog.for_os(OSRelease(id=os_id, version_id=version, pretty_name=pretty))
    assert found.status == status
    assert found.product == product
    assert (found.cycle.cycle if found.cycle else None) == cycle
    if status != "matched":
        assert found.note  # unknown and rolling always say why


def test_rolling_says_so(catalog: EolCatalog) -> None:
    found = catalog.for_os(OSRelease(id="wolfi", version_id="20230201"))
    assert found.note == (
        "Wolfi is a rolling distribution: it has no releases, so nothing reaches end of life by "
        "date; an image is as current as its last rebuild"
    )
    assert found.lts is None


@pytest.mark.parametrize(
    ("os_id", "version", "pretty", "subject"),
    [
        ("debian", "12", None, "Debian 12"),
        ("debian", "12", "Distroless", "Distroless (Debian 12)"),
        ("alpine", "3.19.1", None, "Alpine Linux 3.19.1"),
        ("azurelinux", "3.0", None, "Azure Linux 3.0"),
        ("my-distro", "8", "My Distro 8", "My Distro 8"),
    ],
)
def test_subject_names_the_os(
    catalog: EolCatalog, os_id: str, version: str, pretty: str | None, subject: str
) -> None:
    assert catalog.for_os(OSRelease(id=os_id, version_id=version, pretty_name=pretty)).subject == subject


@pytest.mark.parametrize(
    ("os_id", "version", "lts"),
    [
        ("ubuntu", "22.04", True),
        ("ubuntu", "24.04", True),
        ("ubuntu", "23.10", False),
        ("fedora", "42", False),
        ("debian", "12", True),
        ("alpine", "3.19.1", True),
        ("rhel", "9.4", True),
        ("amzn", "2023", True),
        ("sles", "15.5", True),
    ],
)
def test_lts_notion(catalog: EolCatalog, os_id: str, version: str, lts: bool) -> None:
    found = catalog.for_os(OSRelease(id=os_id, version_id=version))
    assert found.lts is lts
    assert found.lts_basis


RUNTIME_CASES = [
    ("python", "3.12.1", "python", "3.12"),
    ("python", "3.7.17", "python", "3.7"),
    ("python", "3.13.0rc1", "python", None),
    ("nodejs", "20.11.0", "nodejs", "20"),
    ("node", "22.4.0", "nodejs", "22"),
    ("ruby", "3.3.4", "ruby", "3.3"),
    ("go", "1.22.5", "go", "1.22"),
    ("golang", "1.26.1", "go", "1.26"),
    ("java", "21.0.5", "eclipse-temurin", "21"),
    ("java", "8.0.422", "eclipse-temurin", "8"),
    ("java", "1.8.0_392", "eclipse-temurin", "8"),
    ("php", "8.3.9", "php", "8.3"),
    ("dotnet", "8.0.1", "dotnet", "8"),
    ("rust", "1.80.0", "rust", "1.80"),
    ("perl", "5.40.0", "perl", "5.40"),
    ("bash", "5.2", None, None),
]


@pytest.mark.parametrize(("name", "version", "product", "cycle"), RUNTIME_CASES)
def test_runtime_to_cycle(
    catalog: EolCatalog, name: str, version: str, product: str | None, cycle: str | None
) -> None:
    found = catalog.for_runtime(Runtime(name=name, version=version))
    assert found.product == product
    assert (found.cycle.cycle if found.cycle else None) == cycle
    assert found.status == ("matched" if cycle else "unknown-cycle" if product else "unknown-product")


def _fixture_rows() -> list[tuple[str, str]]:
    with FIXTURES.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(r["expected_ID"], r["expected_VERSION_ID"]) for r in rows if r["expected_ID"]]


def test_every_os_release_fixture_is_matched_or_said_unknown(catalog: EolCatalog) -> None:
    for os_id, version in _fixture_rows():
        found = catalog.for_os(OSRelease(id=os_id, version_id=version or None))
        if os_id not in OS_PRODUCTS and os_id not in ROLLING and os_id != "opensuse":
            assert found.status == "unknown-product", (os_id, version)
        if found.status == "matched":
            assert found.cycle is not None
        else:
            assert found.cycle is None
            assert found.note
