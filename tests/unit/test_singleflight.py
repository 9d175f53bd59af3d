"""Single-flight: one computation per key, shared; a caller giving up does not cancel it."""

from __future__ import annotations

import asyncio

import pytest

from distroguard.resolver.singleflight import SingleFlight
from support import shutdown


async def test_concurrent_callers_share_one_computation() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flights.do("k", work)) for _ in range(200)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 200
    assert calls == 1
    assert len(flights) == 0


async def test_errors_reach_every_caller_and_the_next_call_retries() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise RuntimeError("registry down")
        return 7

    results = await asyncio.gather(*(flights.do("k", flaky) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await flights.do("k", flaky) == 7
    assert attempts == 2


async def test_a_caller_that_times_out_leaves_the_work_running() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    finished = asyncio.Event()

    async def slow() -> str:
        await asyncio.sleep(0.05)
        finished.set()
        return "done"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flights.do("k", slow), 0.001)
    assert len(flights) == 1
    await flights.drain()
    assert finished.is_set()
    assert len(flights) == 0


async def test_distinct_keys_run_independently() -> None:
    flights: SingleFlight[int, int] = SingleFlight()

    async def square(n: int) -> int:
        await asyncio.sleep(0)
        return n * n

    results = await asyncio.gather(*(flights.do(n, lambda n=n: square(n)) for n in range(10)))
    assert results == [n * n for n in range(10)]


async def test_a_caller_still_waiting_when_the_error_arrives_leaves_no_task_exception() -> None:
    """kopf, stopping, waits for the tasks still pending and raises what they end with, even an error their
    caller caught: the shared work must end clean while its error reaches the caller still waiting, and the
    one that gave up before."""
    flights: SingleFlight[str, int] = SingleFlight()
    asked = asyncio.Event()
    fail = asyncio.Event()
    attempts = 0

    async def lookup() -> int:
        nonlocal attempts
        attempts += 1
        asked.set()
        await fail.wait()
        raise RuntimeError("registry unavailable")

    async def gives_up() -> str:
        try:
            async with asyncio.timeout(0.01):
                await flights.do("k", lookup)
        except TimeoutError:
            return "gave up"
        return "answered"

    async def waits() -> str:
        try:
            await flights.do("k", lookup)
        except RuntimeError as exc:
            return str(exc)
        return "answered"

    ignored = shutdown.started()
    first = asyncio.create_task(gives_up())
    await asyncio.wait_for(asked.wait(), 5)
    assert await first == "gave up"
    second = asyncio.create_task(waits())
    await asyncio.sleep(0)  # the second caller is waiting on the shared work now
    assert not second.done()
    assert len(flights) == 1
    pending = shutdown.stopping(ignored)
    assert second in pending
    assert len(pending) == 2  # the caller and the shared work: no task of its own per wait
    fail.set()  # the error arrives while kopf waits for the pending tasks
    stopped = await shutdown.stop(pending)
    assert stopped.raised == []
    assert stopped.hung == []
    assert second.result() == "registry unavailable"
    assert attempts == 1
    assert len(flights) == 0
    with pytest.raises(RuntimeError, match="registry unavailable"):
        await flights.do("k", lookup)  # a failure is not kept: the next call tries again
    assert attempts == 2


async def test_work_started_ahead_is_joined_by_the_next_caller() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 7

    flights.start("k", work)
    flights.start("k", work)  # under way: not started twice
    assert "k" in flights
    waiter = asyncio.create_task(flights.do("k", work))
    await asyncio.sleep(0)
    gate.set()
    assert await waiter == 7
    assert calls == 1
