"""Single-flight: one computation per key, shared; a caller giving up does not cancel it."""

from __future__ import annotations

import asyncio

import pytest

from distroguard.resolver.singleflight import SingleFlight


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


async def test_a_failure_finished_in_the_background_leaves_no_task_exception() -> None:
    """Whoever gathers the loop's tasks at shutdown must not find our errors in them."""
    flights: SingleFlight[str, int] = SingleFlight()

    async def fails_later() -> int:
        await asyncio.sleep(0.02)
        raise RuntimeError("registry unavailable")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flights.do("k", fails_later), 0.001)
    (task,) = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(task)  # as a framework collecting hung tasks would: no exception raised
    assert task.exception() is None
    with pytest.raises(RuntimeError, match="registry unavailable"):
        await flights.do("k", fails_later)
