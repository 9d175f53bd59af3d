"""What a new catalog may replace, and a refresh's answers merged into one snapshot. Pure.

- Never older over newer: a catalog replaces the one in place only when its snapshot day is not
  earlier (`replaces`). The same day may replace (a correction on the day it was taken).
- A refresh answers every product (all or nothing, `eol.refresh`); a 304 keeps the product's data
  as it is. The merged snapshot is dated the day of the refresh even when every product answered
  304: endoflife.date confirmed the data that day, and the snapshot day is what staleness and
  "not in the EOL data of ..." are measured from. An unchanged refresh changes nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from distroguard.eol.refresh import NOTICE, Fetched
from distroguard.errors import CatalogUpdateError
from distroguard.model.lifecycle import CatalogSnapshot, ProductLifecycle, ProductValidators


class OlderCatalog(CatalogUpdateError):
    """The new catalog is older than the one in place, which is kept."""

    reason = "catalog-older"


def replaces(new: CatalogSnapshot, current: CatalogSnapshot | None) -> bool:
    return current is None or new.snapshot >= current.snapshot


def require_not_older(new: CatalogSnapshot, current: CatalogSnapshot | None, where: str) -> None:
    if current is not None and not replaces(new, current):
        raise OlderCatalog(
            f"the catalog given ({new.snapshot}) is older than {where} ({current.snapshot}, "
            f"{current.source}): an older catalog never replaces a newer one"
        )


def refresh_names(current: CatalogSnapshot | None, bundled: CatalogSnapshot) -> list[str]:
    """The products a refresh asks for: those of the catalog in place, then those the bundled snapshot
    adds (a newer distroguard may know more products)."""
    names = [p.name for p in current.products] if current is not None else []
    return names + [p.name for p in bundled.products if p.name not in set(names)]


def merge(
    current: CatalogSnapshot | None,
    names: Sequence[str],
    fetched: Mapping[str, Fetched],
    *,
    today: date,
    source: str,
) -> CatalogSnapshot:
    """The snapshot after a refresh: fetched products replaced, 304s kept from `current`."""
    kept = {p.name: p for p in current.products} if current is not None else {}
    products: list[ProductLifecycle] = []
    for name in names:
        answer = fetched[name]
        if answer.lifecycle is not None:
            products.append(answer.lifecycle)
        elif name in kept:
            products.append(kept[name])
        else:
            raise CatalogUpdateError(f"endoflife.date answered 304 Not Modified for {name}: no data to keep")
    return CatalogSnapshot(snapshot=today, source=source, notice=NOTICE, products=tuple(products))


def validators_of(fetched: Mapping[str, Fetched]) -> dict[str, ProductValidators]:
    """The validators to store: only products that sent some."""
    return {
        name: answer.validators
        for name, answer in sorted(fetched.items())
        if answer.validators.etag or answer.validators.last_modified
    }


def unchanged(new: CatalogSnapshot, current: CatalogSnapshot | None) -> bool:
    """The same data (the day and the source aside)."""
    return current is not None and new.products == current.products
