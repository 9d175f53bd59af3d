"""Synthetic EOL catalogs and image facts for policy tests: dates relative to a frozen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from distroguard.eol import EolCatalog
from distroguard.model import (
    CatalogSnapshot,
    ImageFacts,
    Libc,
    LibcFamily,
    OSRelease,
    ProductLifecycle,
    ReleaseCycle,
    Runtime,
)
from distroguard.model.lifecycle import PhaseEnd

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def days(n: int) -> date:
    """TODAY + n days (negative: in the past)."""
    return TODAY + timedelta(days=n)


def cycle(
    name: str,
    *,
    eol: PhaseEnd,
    eoas: PhaseEnd | None = None,
    eoes: PhaseEnd | None = None,
    lts: bool | date = False,
    released: date | None = None,
    codename: str | None = None,
) -> ReleaseCycle:
    return ReleaseCycle(
        cycle=name,
        codename=codename,
        release_date=released or days(-700),
        lts=lts,
        eoas=eoas,
        eol=eol,
        eoes=eoes,
    )


def product(name: str, label: str, *cycles: ReleaseCycle, category: str = "os") -> ProductLifecycle:
    return ProductLifecycle(name=name, label=label, category=category, cycles=cycles)


def catalog(*products: ProductLifecycle, snapshot: date = TODAY) -> EolCatalog:
    return EolCatalog(CatalogSnapshot(snapshot=snapshot, source="tests", products=products))


def facts(
    os_id: str | None = "debian",
    version: str | None = "12",
    *,
    codename: str | None = None,
    pretty: str | None = None,
    libc: LibcFamily = "glibc",
    libc_version: str | None = "2.36",
    runtimes: tuple[tuple[str, str], ...] = (),
    size: int = 50_000_000,
    reference: str = "registry.example.com/app:1",
) -> ImageFacts:
    os = (
        None
        if os_id is None
        else OSRelease(id=os_id, version_id=version, codename=codename, pretty_name=pretty)
    )
    return ImageFacts(
        reference=reference,
        os=os,
        libc=Libc(family=libc, version=libc_version),
        runtimes=tuple(Runtime(name=n, version=v) for n, v in runtimes),
        image_size=size,
    )
