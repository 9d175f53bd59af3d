"""Cold lookups shared fairly between namespaces.

Whoever can create pods in a namespace chooses their images, and every image the cache does not know costs a
registry lookup: requests, connections (aiohttp's connector holds 100 at most, for everyone), and up to
`ResolverSettings.lookup_timeout` of background work. `ColdLookups` gives each namespace its own budget of
them: at most `concurrency` under way at once (background completion included) and `rate` started per second
with a `burst`. A lookup over the rate is refused at once (`LookupLimited`: the image is unresolved and the
policies' `onUnresolved` decides); one waiting for a slot waits within the caller's budget. Warm answers and
lookups already under way (which a review joins at no cost) are never counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from cachetools import LRUCache

from distroguard.errors import LookupLimited

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FairnessSettings:
    concurrency: int = 8
    """Cold lookups of one namespace under way at once, background completion included (8 of the registry
    client's 100 connections at most)."""
    rate: float = 10.0
    """Cold lookups one namespace may start per second, on average."""
    burst: int = 50
    """Cold lookups one namespace may start at once after a quiet spell (a rollout of new images: a large
    chart installed at once names a few dozen)."""
    namespaces: int = 4096
    """Namespaces whose budgets are remembered (the least recently used is forgotten: a fresh budget)."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.burst < 1 or self.rate <= 0 or self.namespaces < 1:
            raise ValueError("cold lookup limits must be positive (concurrency, rate, burst)")


class Gate:
    """One namespace's budget: a token bucket (rate, burst) and a semaphore (concurrency)."""

    __slots__ = ("_clock", "_settings", "_slots", "_stamp", "_tokens", "namespace")

    def __init__(self, namespace: str, settings: FairnessSettings, clock: Callable[[], float]) -> None:
        self.namespace = namespace
        self._settings = settings
        self._clock = clock
        self._tokens = float(settings.burst)
        self._stamp = clock()
        self._slots = asyncio.Semaphore(settings.concurrency)

    def take(self) -> None:
        """Count one cold lookup started; LookupLimited when the namespace is over its rate."""
        now = self._clock()
        self._tokens = min(
            float(self._settings.burst), self._tokens + (now - self._stamp) * self._settings.rate
        )
        self._stamp = now
        if self._tokens < 1.0:
            raise LookupLimited(
                f"namespace {self.namespace} started more than {self._settings.burst} image lookups at "
                f"{self._settings.rate:g}/s; asked again when the review is retried"
            )
        self._tokens -= 1.0

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work` once one of the namespace's slots is free; the slot is held until it ends."""
        async with self._slots:
            return await work()


class ColdLookups:
    """Every namespace's gate, made on first use."""

    def __init__(self, settings: FairnessSettings | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = settings or FairnessSettings()
        self._clock = clock
        self._gates: LRUCache[str, Gate] = LRUCache(self.settings.namespaces)

    def gate(self, namespace: str) -> Gate:
        found = self._gates.get(namespace)
        if found is None:
            found = self._gates[namespace] = Gate(namespace, self.settings, self._clock)
        return found
