"""The EOL catalog in use, swapped atomically when the cluster's EOLCatalog object changes.

Readers (the webhook's `Admitter`, the `Auditor`, the metrics) call `current()` once per decision or
audit and use what they got throughout: a swap is one assignment, so a review sees the old catalog or
the new one, never a mix. `DecisionMemo` keys on the catalog's identity, so a swap retires every
memoised decision by itself.

The object is the one named `default`. Without it (none yet, or deleted), the fallback is used: the
bundled snapshot, or the local cache when newer (`eol.load_catalog`). An invalid object is logged and
ignored (the catalog in use stays), and one older than the fallback is not used (never older over
newer). Status-only updates (the refresher's bookkeeping) change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from distroguard.eol import EolCatalog, staleness
from distroguard.eol.fileformat import from_document
from distroguard.errors import CatalogError
from distroguard.model.api import CATALOG_KIND, CATALOG_NAME

logger = logging.getLogger(__name__)


DEFAULT_MAX_AGE_DAYS = 30


class CatalogHolder:
    def __init__(
        self,
        fallback: EolCatalog,
        *,
        max_age_days: int = DEFAULT_MAX_AGE_DAYS,
        on_swap: Callable[[EolCatalog], None] | None = None,
    ) -> None:
        """`max_age_days`: EOL data older than this is warned about (`stale`)."""
        self._fallback = fallback
        self.max_age_days = max_age_days
        self._current = fallback
        self.origin = "fallback"
        """Where the catalog in use came from: "fallback" (bundled or local cache) or "cluster"."""
        self._on_swap = on_swap

    def current(self) -> EolCatalog:
        """The catalog for the next decision."""
        return self._current

    def stale(self, today: date) -> str | None:
        """The warning when the data in use is older than `max_age_days` on `today`; None when fresh."""
        return staleness(self._current.snapshot, today, self.max_age_days)

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """One watch event of an EOLCatalog object; True when the catalog in use changed."""
        name = (body.get("metadata") or {}).get("name")
        if name != CATALOG_NAME:
            if isinstance(name, str):
                logger.warning("%s %s is ignored: only %r is read", CATALOG_KIND, name, CATALOG_NAME)
            return False
        if event_type == "DELETED":
            if self.origin == "cluster":
                logger.warning(
                    "%s %s was deleted: back to the %s EOL data of %s",
                    CATALOG_KIND,
                    name,
                    self._fallback.source,
                    self._fallback.snapshot,
                )
            return self._install(self._fallback, "fallback")
        try:
            snapshot = from_document(body.get("spec"), f"{CATALOG_KIND} {name}")
        except CatalogError as exc:
            logger.error("%s; the EOL data in use (of %s) stays", exc, self._current.snapshot)
            return False
        if snapshot == self._current.data:
            return False  # a status update, or the same data again
        if snapshot.snapshot < self._fallback.snapshot:
            logger.warning(
                "%s %s holds EOL data of %s, older than the %s (of %s): the newer is used",
                CATALOG_KIND,
                name,
                snapshot.snapshot,
                self._fallback.source,
                self._fallback.snapshot,
            )
            return self._install(self._fallback, "fallback")
        return self._install(EolCatalog(snapshot), "cluster")

    def _install(self, catalog: EolCatalog, origin: str) -> bool:
        if catalog is self._current:
            return False
        self._current = catalog
        self.origin = origin
        logger.info(
            "EOL catalog in use: %s data of %s (%s, %d products)",
            origin,
            catalog.snapshot,
            catalog.source,
            len(catalog.products),
        )
        if self._on_swap is not None:
            self._on_swap(catalog)
        return True
