"""A lookup failing while the operator stops leaves kopf nothing to raise: the process exits cleanly.

kopf raises, as the process's failure, the exception of any task created after its start that was still
pending when it began to stop, even one whose error its caller caught (see `support.shutdown`). Here the
error reaches callers still waiting at that moment, through `Resolver.resolve` with a budget, as the
audit's and admission's lookups of an image on a registry that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from distroguard.errors import DeadlineExceeded, RegistryUnavailable
from distroguard.model import ImageRef
from distroguard.registry.client import RegistryClient
from distroguard.registry.meter import ByteMeter
from distroguard.resolver import Resolver
from support import shutdown

IMAGE = "127.0.0.1:1/nowhere/app:1"


class GoneRegistry(RegistryClient):
    """Every lookup waits until the test lets it fail as a registry that is gone does."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.fail = asyncio.Event()
        self.requests = 0

    async def get_manifest(
        self,
        ref: ImageRef,
        reference: str,
        *,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> tuple[str, bytes, str]:
        self.requests += 1
        self.asked.set()
        await self.fail.wait()
        raise RegistryUnavailable(ref.registry, "connection refused; gave up after 4 attempts")


@pytest.fixture
async def registry() -> AsyncIterator[GoneRegistry]:
    async with GoneRegistry() as client:
        yield client


async def caught(resolver: Resolver, budget: float) -> str:
    """A caller that handles the lookup's error, as the audit and admission do."""
    try:
        await resolver.resolve(IMAGE, budget=budget)
    except (RegistryUnavailable, DeadlineExceeded) as exc:
        return type(exc).__name__
    return "resolved"


async def test_a_lookup_failing_within_the_budget_while_kopf_stops_leaves_nothing_to_raise(
    registry: GoneRegistry,
) -> None:
    resolver = Resolver(registry)
    ignored = shutdown.started()
    callers = [asyncio.create_task(caught(resolver, budget=60.0)) for _ in range(2)]
    await asyncio.wait_for(registry.asked.wait(), 5)
    await asyncio.sleep(0)  # the second caller is waiting on the same lookup now
    pending = shutdown.stopping(ignored)
    assert set(callers) <= pending
    registry.fail.set()  # the error arrives while kopf waits for the pending tasks
    stopped = await shutdown.stop(pending)
    assert stopped.raised == []
    assert stopped.hung == []
    assert [caller.result() for caller in callers] == ["RegistryUnavailable"] * 2
    assert registry.requests == 1
    assert shutdown.stopping(ignored) == set()


async def test_a_lookup_failing_after_its_caller_gave_up_while_kopf_stops_leaves_nothing_to_raise(
    registry: GoneRegistry,
) -> None:
    resolver = Resolver(registry)
    ignored = shutdown.started()
    impatient = asyncio.create_task(caught(resolver, budget=0.01))
    assert await impatient == "DeadlineExceeded"
    patient = asyncio.create_task(caught(resolver, budget=60.0))
    await asyncio.sleep(0)
    pending = shutdown.stopping(ignored)
    assert patient in pending
    registry.fail.set()
    stopped = await shutdown.stop(pending)
    assert stopped.raised == []
    assert stopped.hung == []
    assert patient.result() == "RegistryUnavailable"
    assert registry.requests == 1
    with pytest.raises(RegistryUnavailable):  # the failure is cached: no new request
        await resolver.resolve(IMAGE, budget=60.0)
    assert registry.requests == 1
