"""A TTL cache in front of a blocking read (a `kubernetes` client call) that runs in a worker thread.

The event loop never blocks on the Kubernetes API: a miss runs the read with `asyncio.to_thread`, and
concurrent misses of one key share that one read (single-flight). A failed read is not cached: the next
request tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

from distroguard.resolver.singleflight import SingleFlight

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ThreadedTTLCache(Generic[K, V]):
    def __init__(self, read: Callable[[K], V], *, ttl: float, maxsize: int = 1024) -> None:
        self._read = read
        self._cache: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._flights: SingleFlight[K, V] = SingleFlight()

    async def get(self, key: K) -> V:
        try:
            return self._cache[key]
        except KeyError:
            return await self._flights.do(key, lambda: self._load(key))

    async def _load(self, key: K) -> V:
        value = await asyncio.to_thread(self._read, key)
        self._cache[key] = value
        return value

    def clear(self) -> None:
        self._cache.clear()

    async def cancel(self) -> None:
        """Cancel the reads under way (the process is stopping); return once they have ended."""
        await self._flights.cancel()
