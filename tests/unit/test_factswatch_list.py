"""The ImageFacts list a replica reads at start, page by page: every public record ends up in the anonymous
resolver's inventory tier, in the loop's thread, before `wait_listed` returns; a failure remembered while
the list was read does not outlive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from test_resolver_remember import REPO, mixed_record

from distroguard.errors import DistroguardError
from distroguard.model.platform import platforms_text
from distroguard.model.record import FactsRecord
from distroguard.operator.factswatch import FactsWatch
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver

RECORDS = 23
PAGE = 5


def record(n: int) -> FactsRecord:
    private = n % 7 == 0
    return mixed_record().model_copy(
        update={"digest": f"sha256:{n:064x}", "references": (), "access": "private" if private else "public"}
    )


class Pages:
    """What the API server answers a paged list: `PAGE` objects a page, a continue token to the next."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def __call__(self, **asked: Any) -> Any:
        self.asked.append(asked)
        start = int(asked.get("_continue") or 0)
        items = [
            {"metadata": {"name": f"n{n}"}, "spec": record(n).model_dump(mode="json", by_alias=True)}
            for n in range(start, min(RECORDS, start + PAGE))
        ]
        more = start + PAGE < RECORDS
        body = {"metadata": {"resourceVersion": "77", "continue": str(start + PAGE) if more else None}}
        body["items"] = items

        class Response:
            data = orjson.dumps(body)

        return Response()


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        yield Resolver(client)


async def test_every_public_record_is_in_the_cache_once_listed(resolver: Resolver) -> None:
    watch = FactsWatch(None, resolver, asyncio.get_running_loop())
    pages = Pages()
    watch._list_call = pages
    failed = (f"{REPO}@sha256:{1:064x}", platforms_text(None), "fast")
    resolver.cache.failures.put(failed, DistroguardError("the registry, asked while the list was read"))
    assert resolver.cached_platforms(failed[0]) is None
    version = await asyncio.to_thread(watch._list)
    assert version == "77"
    assert watch.wait_listed(0)
    assert len(pages.asked) == -(-RECORDS // PAGE)
    await asyncio.sleep(0)  # the loop takes what the list handed over
    public = [n for n in range(RECORDS) if record(n).access == "public"]
    assert watch.public == len(public)
    for n in range(RECORDS):
        found = resolver.cached_platforms(f"{REPO}@sha256:{n:064x}")
        assert (found is not None) == (n in public), n
    assert resolver.cache.failures.peek(failed) is None
