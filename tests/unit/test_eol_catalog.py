"""The EOL catalog: the bundled snapshot, the file format, the cache, and lookups on a snapshot."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot, load_catalog
from distroguard.eol.fileformat import dumps, loads
from distroguard.eol.products import LTS_POLICIES, OS_PRODUCTS, RUNTIME_PRODUCTS
from distroguard.eol.store import write_cache
from distroguard.errors import CatalogError
from distroguard.model import OSRelease
from support.lifecycles import TODAY, cycle, days, product
from support.lifecycles import catalog as make_catalog


def test_bundled_snapshot_is_dated_and_complete() -> None:
    snapshot = bundled_snapshot()
    assert snapshot.snapshot == date(2026, 8, 22)
    assert snapshot.source.startswith("endoflife.date commit ")
    assert "MIT" in snapshot.notice
    names = {p.name for p in snapshot.products}
    # Every product the matching tables can name is in the snapshot.
    assert set(OS_PRODUCTS.values()) | set(RUNTIME_PRODUCTS.values()) | {"centos-stream"} <= names
    assert set(LTS_POLICIES) <= names


def test_bundled_file_and_licence_ship_in_the_package() -> None:
    data = resources.files("distroguard").joinpath("data")
    text = data.joinpath("eol.json").read_text(encoding="utf-8")
    assert dumps(loads(text, "bundled")) == text  # the converter's format, byte for byte
    assert "MIT" in data.joinpath("eol.LICENSE").read_text(encoding="utf-8")


def test_file_format_keeps_every_kind_of_phase() -> None:
    original = make_catalog(
        product(
            "x",
            "X",
            cycle("2", eol=days(10), eoas=True, eoes=False, lts=days(5), codename="Two"),
            cycle("1", eol=True, lts=True),
            cycle("0", eol=False),
        )
    ).data
    assert loads(dumps(original), "memory") == original


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not a valid EOL catalog"),
        ('{"format": 2, "snapshot": "2026-01-01", "source": "x", "products": []}', "format"),
        ('{"format": 1, "snapshot": "yesterday", "source": "x", "products": []}', "snapshot"),
    ],
)
def test_invalid_catalog_files(text: str, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        loads(text, "cache.json")


def test_supported_cycles_newest_first() -> None:
    catalog = make_catalog(
        product(
            "debian",
            "Debian",
            cycle("14", eol=days(2000), released=days(10)),  # not released yet
            cycle("13", eol=days(900), released=days(-200)),
            cycle("12", eol=days(1), released=days(-1000)),
            cycle("11", eol=days(0), released=days(-1800)),
        )
    )
    assert [c.cycle for c in catalog.supported("debian", TODAY)] == ["13", "12"]
    assert catalog.supported("nothing", TODAY) == ()


def test_age_and_staleness() -> None:
    catalog = make_catalog(product("x", "X", cycle("1", eol=False)), snapshot=days(-91))
    assert catalog.age_days(TODAY) == 91
    assert catalog.is_stale(TODAY)
    assert not catalog.is_stale(TODAY, max_age_days=91)


def test_lookups_are_memoised() -> None:
    catalog = EolCatalog(bundled_snapshot())
    os = OSRelease(id="debian", version_id="12")
    assert catalog.for_os(os) is catalog.for_os(os)


def test_no_cache_uses_the_bundled_snapshot(tmp_path: Path) -> None:
    loaded = load_catalog(tmp_path / "missing.json")
    assert (loaded.origin, loaded.warnings) == ("bundled", ())


def test_a_newer_cache_wins(tmp_path: Path) -> None:
    path = tmp_path / "eol.json"
    newer = bundled_snapshot().model_copy(update={"snapshot": date(2026, 11, 1), "source": "api"})
    write_cache(path, newer)
    loaded = load_catalog(path)
    assert (loaded.origin, loaded.catalog.snapshot, loaded.location) == (
        "cache",
        date(2026, 11, 1),
        str(path),
    )


def test_an_older_cache_loses_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "eol.json"
    write_cache(path, bundled_snapshot().model_copy(update={"snapshot": date(2025, 1, 1)}))
    loaded = load_catalog(path)
    assert loaded.origin == "bundled"
    assert "older than the bundled snapshot" in loaded.warnings[0]


def test_a_corrupt_cache_falls_back_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "eol.json"
    path.write_text('{"format": 1, "snap')
    loaded = load_catalog(path)
    assert loaded.origin == "bundled"
    assert loaded.warnings[0].startswith(f"EOL cache {path} is not a valid EOL catalog")
    assert loaded.warnings[0].endswith("; using the bundled snapshot")


def test_write_cache_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cache" / "eol.json"
    write_cache(path, bundled_snapshot())
    before = path.read_bytes()

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("distroguard.eol.store.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_cache(path, bundled_snapshot().model_copy(update={"source": "other"}))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["eol.json"]  # no temporary file left
