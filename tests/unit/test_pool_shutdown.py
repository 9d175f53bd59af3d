"""The operator stopping while a registry's name is still being looked up leaves kopf nothing to raise.

aiohttp resolves a host name in a task of its own, shared by the requests that wait for it; a lookup whose
budget runs out stops waiting, but that task goes on, and ends with the DNS error. kopf, stopping, takes
every task created since its start that is still pending and raises what it ends with (`support.shutdown`):
so the operator aborts its resolver pool when kopf stops (`ResolverPool.abort`, the kopf cleanup handler),
cancelling its lookups and closing its clients, which cancels their DNS tasks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from distroguard.errors import DeadlineExceeded
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver.routing import ResolverPool
from support import shutdown

IMAGE = "registry.test:5000/team/app:1"
SETTINGS = RegistrySettings()


class UnansweredDns(AbstractResolver):
    """A DNS resolver that answers nothing until told to, then that the name is unknown."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        self.asked.set()
        await self.answer.wait()
        raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")

    async def close(self) -> None:
        return None


@pytest.fixture
def dns() -> UnansweredDns:
    return UnansweredDns()


@pytest.fixture
async def pool(dns: UnansweredDns) -> AsyncIterator[ResolverPool]:
    def client(store: CredentialStore | None) -> RegistryClient:
        return RegistryClient(SETTINGS, store, dns=dns)

    pool = ResolverPool(SETTINGS, ttl=60, client=client)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.abort()


async def a_lookup_past_its_budget(pool: ResolverPool, dns: UnansweredDns) -> None:
    """Admission's lookup: the budget runs out while the registry's name is still being looked up."""
    with pytest.raises(DeadlineExceeded):
        await pool.anonymous.resolve(IMAGE, budget=0.2)
    assert dns.asked.is_set()


async def test_aborting_the_pool_when_kopf_stops_leaves_nothing_to_raise(
    pool: ResolverPool, dns: UnansweredDns
) -> None:
    ignored = shutdown.started()
    await a_lookup_past_its_budget(pool, dns)
    pending = shutdown.stopping(ignored)
    assert pending, "the lookup goes on in the background"
    await pool.abort()  # kopf's cleanup handler, before it takes the tasks still pending
    dns.answer.set()
    stopped = await shutdown.stop(shutdown.stopping(ignored) | pending, grace=2)
    assert stopped.raised == []
    assert stopped.hung == []


async def test_without_the_abort_the_dns_error_fails_kopfs_shutdown(
    pool: ResolverPool, dns: UnansweredDns
) -> None:
    """The same stop without the abort: what the test above guards against happens."""
    ignored = shutdown.started()
    await a_lookup_past_its_budget(pool, dns)
    pending = shutdown.stopping(ignored)
    dns.answer.set()
    stopped = await shutdown.stop(pending, grace=2)
    assert any(isinstance(error, OSError) and "registry.test" in str(error) for error in stopped.raised)
