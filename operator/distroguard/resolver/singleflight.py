"""Async single-flight: concurrent callers of one key share one computation.

cachetools has no notion of "being computed"; without this, 200 admission requests for one new image
would make 200 registry round-trips. The shared task is shielded, so a caller that gives up (its deadline
passed) does not cancel the work: it finishes in the background and fills the cache for the retry.

The task itself never ends in an exception: it settles into an outcome that each waiter unpacks. A
background task nobody awaits any more must not carry an error, because whoever gathers the loop's
tasks at shutdown (kopf does) would raise it as the process's own failure. kopf takes every task created
after its start and still pending when it stops, waits a little for it, then raises whatever exception it
ended with, even one its awaiter caught. So callers must not run `do` in a task of their own either (as
`asyncio.wait_for` does on Python 3.11): bound the wait with `asyncio.timeout` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[V]):
    value: V | None = None
    error: Exception | None = None

    def unpack(self) -> V:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


async def settle(work: Awaitable[V]) -> Outcome[V]:
    """`work`'s value or error, never raised: what a task of ours that nobody may await to its end runs."""
    try:
        return Outcome(value=await work)
    except Exception as exc:  # handed to every waiter by `unpack`
        return Outcome(error=exc)


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[Outcome[V]]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, key: K) -> bool:
        """Whether work for `key` is under way (a caller would join it)."""
        return key in self._running

    async def do(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        outcome = await asyncio.shield(self._task(key, work))
        return outcome.unpack()

    def start(self, key: K, work: Callable[[], Awaitable[V]]) -> None:
        """Start the work for `key` unless it is under way, without waiting: a later `do` joins it (or, once
        it has ended, starts it again: keep what it computes elsewhere)."""
        self._task(key, work)

    def _task(self, key: K, work: Callable[[], Awaitable[V]]) -> asyncio.Task[Outcome[V]]:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(settle(work()))
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: K, task: asyncio.Task[Outcome[V]]) -> None:
        if self._running.get(key) is task:
            del self._running[key]

    async def cancel(self) -> None:
        """Cancel the work under way and wait until it has ended (shutdown): nothing is left running, nor
        ending later with an error, for whoever owns the event loop to find."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for background work to end (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
