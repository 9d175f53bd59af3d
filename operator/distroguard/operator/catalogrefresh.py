"""The audit role keeps the cluster's EOLCatalog fresh from the endoflife.date API.

Every `interval` (counted from the last check stored in the object, so a restart does not fetch again at
once) every product is asked for with its stored validators (If-None-Match / If-Modified-Since): a 304
keeps that product's data. All or nothing: the spec is replaced only when every product answered and the
result validated (`eol.refresh`, `eol.update`), as of the resourceVersion it was decided on; a failure
leaves the spec as it was and records the error in the status, and is tried again after `retry`.

A refresh that changed nothing but the day still dates the spec today (endoflife.date confirmed the data),
at most once a day; the status records the check every time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from distroguard.eol.refresh import DEFAULT_BASE_URL, RefreshSettings, fetch_products, source_of
from distroguard.eol.update import merge, refresh_names, unchanged, validators_of
from distroguard.errors import CatalogError
from distroguard.model.api import CATALOG_KIND, CATALOG_NAME
from distroguard.model.lifecycle import CatalogSnapshot, CatalogStatus
from distroguard.operator.catalogstore import (
    WRITE_ATTEMPTS,
    CatalogObjects,
    Conflict,
    StoredCatalog,
    snapshot_time,
)
from distroguard.operator.clock import Clock, system_clock

logger = logging.getLogger(__name__)

Outcome = Literal["changed", "confirmed", "failed"]


@dataclass(frozen=True, slots=True)
class EolSettings:
    url: str = DEFAULT_BASE_URL
    """endoflife.date site (or API v1 root) the audit refreshes the cluster's EOLCatalog from; "": never
    (air-gapped clusters: `distroguard eol update --kubeconfig` pushes it)."""
    interval: float = 86400.0
    """Seconds between refreshes."""
    retry: float = 900.0
    """Seconds before a failed refresh is tried again (or `interval`, when shorter)."""
    deadline: float = 120.0
    """Seconds one refresh may take, every product and retry included."""
    max_age_days: int = 30
    """EOL data older than this many days is warned about (logs, ClusterPolicyReport)."""

    @property
    def refreshes(self) -> bool:
        return bool(self.url)


class CatalogRefresher:
    def __init__(
        self,
        store: CatalogObjects,
        settings: EolSettings,
        *,
        bundled: CatalogSnapshot,
        clock: Clock = system_clock,
        fetch: RefreshSettings | None = None,
    ) -> None:
        """`bundled`: the snapshot in the package, whose products are asked for too (a newer distroguard
        may know more). `fetch`: the HTTP settings (default: `settings.url` and `settings.deadline`)."""
        self._store = store
        self.settings = settings
        self._bundled = bundled
        self._clock = clock
        self._fetch = fetch or RefreshSettings(base_url=settings.url, deadline=settings.deadline)

    async def serve(self) -> None:
        """Refresh when due, until cancelled."""
        while True:
            try:
                wait = await asyncio.to_thread(self._wait)
            except Exception:  # the API server restarting: asked again soon
                logger.exception("cannot read the %s object; trying again soon", CATALOG_KIND)
                wait = min(self.settings.retry, self.settings.interval)
            if wait > 0:
                await asyncio.sleep(wait)
            if await self.refresh() == "failed":
                # Not again at once, even when there is no object to keep the failure's time on.
                await asyncio.sleep(min(self.settings.retry, self.settings.interval))

    def _wait(self) -> float:
        """Seconds until the next refresh is due, from what the object says."""
        stored = self._store.read()
        if stored is None:
            return 0.0
        now = self._clock()
        status = stored.status
        due: datetime | None = None
        if status.checked is not None:
            due = status.checked + timedelta(seconds=self.settings.interval)
        if status.last_error and status.last_attempt is not None:
            soon = status.last_attempt + timedelta(seconds=min(self.settings.retry, self.settings.interval))
            due = soon if due is None else min(due, soon)
        return 0.0 if due is None else max(0.0, (due - now).total_seconds())

    async def refresh(self) -> Outcome:
        """One refresh; never raises for endoflife.date's or the API server's failures (logged, and kept in
        the object's status when it exists)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await self._refresh_once()
            except Conflict:
                if attempt == WRITE_ATTEMPTS:
                    return await self._failed(f"{CATALOG_KIND} {CATALOG_NAME} kept changing meanwhile")
                logger.info("%s %s changed meanwhile: refreshing again", CATALOG_KIND, CATALOG_NAME)
            except CatalogError as exc:
                return await self._failed(str(exc))
            except Exception as exc:
                logger.exception("the EOL refresh failed")
                return await self._failed(f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable: the last attempt returns")

    async def _refresh_once(self) -> Outcome:
        before = await asyncio.to_thread(self._store.read)
        current = before.snapshot if before is not None else None
        names = refresh_names(current, self._bundled)
        known = (
            before.status.products
            if before is not None and current is not None and before.validators_valid()
            else {}
        )
        fetched = await fetch_products(names, self._fetch, known)
        now = self._clock()
        today = now.date()
        new = merge(current, names, fetched, today=today, source=source_of(self._fetch))
        same = unchanged(new, current)
        if before is not None and current is not None and current.snapshot > today:
            raise CatalogError(
                f"the cluster's {CATALOG_KIND} is dated {current.snapshot}, after today ({today}): it is kept"
            )
        written: StoredCatalog | None = before
        if before is None or current is None or not same or current.snapshot < today:
            written = await asyncio.to_thread(self._store.write_spec, new, before)
        assert written is not None
        previous = before.status if before is not None else CatalogStatus()
        status = CatalogStatus(
            observed_generation=written.generation,
            snapshot_time=snapshot_time(written.snapshot or new),
            checked=now,
            changed=previous.changed if same else now,
            products=validators_of(fetched),
            last_attempt=now,
        )
        await asyncio.to_thread(self._store.write_status, status)
        fresh = sum(1 for answer in fetched.values() if answer.lifecycle is not None)
        if same:
            logger.info(
                "EOL data confirmed by %s: %d products unchanged (%d of them by 304)",
                self._fetch.base_url,
                len(names),
                len(names) - fresh,
            )
            return "confirmed"
        logger.info(
            "EOL data refreshed from %s: %d products (%d fetched, %d unchanged by 304), data of %s",
            self._fetch.base_url,
            len(names),
            fresh,
            len(names) - fresh,
            today,
        )
        return "changed"

    async def _failed(self, reason: str) -> Outcome:
        logger.warning("the EOL refresh failed, the EOL data stays as it was: %s", reason)
        try:
            await asyncio.to_thread(self._record_failure, reason)
        except Exception as exc:  # the failure is logged above; its bookkeeping is best effort
            logger.warning("cannot record the failed EOL refresh in %s: %s", CATALOG_KIND, exc)
        return "failed"

    def _record_failure(self, reason: str) -> None:
        stored = self._store.read()
        if stored is None:
            return  # nothing to record it on; the next try comes after `retry`
        now = self._clock()
        self._store.write_status(stored.status.model_copy(update={"last_attempt": now, "last_error": reason}))
