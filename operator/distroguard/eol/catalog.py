"""`EolCatalog`: the lifecycle data of one snapshot, indexed for lookups. Pure: built from data,
never reads.

It implements `distroguard.model.LifecycleLookup`, the contract the policy engine evaluates against.
"""

from __future__ import annotations

from datetime import date

from distroguard.eol.match import match_os, match_runtime
from distroguard.model.facts import OSRelease, Runtime
from distroguard.model.lifecycle import (
    CatalogSnapshot,
    LifecycleMatch,
    ProductLifecycle,
    ReleaseCycle,
    phase_over,
)

# Lookups are memoised per (ID, version, name): a cluster runs few distinct OS releases. The bound
# keeps a stream of made-up os-release files from growing the memo without limit.
_MEMO_LIMIT = 4096

DEFAULT_MAX_AGE_DAYS = 90


class EolCatalog:
    def __init__(self, data: CatalogSnapshot) -> None:
        self.data = data
        self._products = {product.name: product for product in data.products}
        self._os_memo: dict[tuple[str, str | None, str | None, str | None], LifecycleMatch] = {}
        self._runtime_memo: dict[tuple[str, str], LifecycleMatch] = {}
        self._supported_memo: dict[tuple[str, date], tuple[ReleaseCycle, ...]] = {}

    @property
    def snapshot(self) -> date:
        return self.data.snapshot

    @property
    def source(self) -> str:
        return self.data.source

    @property
    def products(self) -> tuple[ProductLifecycle, ...]:
        return self.data.products

    def product(self, name: str) -> ProductLifecycle | None:
        return self._products.get(name)

    def for_os(self, os: OSRelease) -> LifecycleMatch:
        key = (os.id, os.version_id, os.pretty_name, os.codename)
        found = self._os_memo.get(key)
        if found is None:
            if len(self._os_memo) >= _MEMO_LIMIT:
                self._os_memo.clear()
            found = self._os_memo[key] = match_os(os, self._products.get)
        return found

    def for_runtime(self, runtime: Runtime) -> LifecycleMatch:
        key = (runtime.name, runtime.version)
        found = self._runtime_memo.get(key)
        if found is None:
            if len(self._runtime_memo) >= _MEMO_LIMIT:
                self._runtime_memo.clear()
            found = self._runtime_memo[key] = match_runtime(runtime, self._products.get)
        return found

    def supported(self, product: str, today: date) -> tuple[ReleaseCycle, ...]:
        """Released cycles of `product` within security support on `today`, newest release first."""
        key = (product, today)
        found = self._supported_memo.get(key)
        if found is None:
            if len(self._supported_memo) >= _MEMO_LIMIT:
                self._supported_memo.clear()
            found = self._supported_memo[key] = self._supported(product, today)
        return found

    def _supported(self, product: str, today: date) -> tuple[ReleaseCycle, ...]:
        data = self._products.get(product)
        if data is None:
            return ()
        live = [
            c
            for c in data.cycles
            if c.release_date is not None and c.release_date <= today and not phase_over(c.eol, today)
        ]
        return tuple(sorted(live, key=lambda c: c.release_date or date.min, reverse=True))

    def age_days(self, today: date) -> int:
        return (today - self.snapshot).days

    def is_stale(self, today: date, max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> bool:
        return self.age_days(today) > max_age_days


def staleness(snapshot: date, today: date, max_age_days: int) -> str | None:
    """The warning for EOL data older than `max_age_days` on `today`; None while it is fresh enough."""
    age = (today - snapshot).days
    if age <= max_age_days:
        return None
    return (
        f"the EOL data is {age} days old (endoflife.date data of {snapshot}, more than {max_age_days} "
        "days): releases newer than it are unknown and changed end-of-life dates are not seen; refresh "
        "it (the audit's --eol-url, or `distroguard eol update`)"
    )
