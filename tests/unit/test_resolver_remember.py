"""Facts learnt elsewhere (an ImageFacts object) answer lookups without a registry: by digest always, by
tag for what is left of the tag TTL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts
from distroguard.registry.client import RegistryClient
from distroguard.resolver import CacheSettings, Resolver, ResolverSettings
from support.lifecycles import facts

DIGEST = "sha256:" + "ab" * 32
INDEX = "sha256:" + "cd" * 32
# Nothing listens on port 1: any request the resolver made would fail the lookup.
REPO = "127.0.0.1:1/team/app"
#: Long beside the sleeps below, so that a slow machine cannot expire a tag early.
TAG_TTL = 30.0


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    settings = ResolverSettings(cache=CacheSettings(tag_ttl=TAG_TTL), lookup_timeout=2.0)
    async with RegistryClient() as client:
        yield Resolver(client, settings)


def learnt() -> ImageFacts:
    return facts("debian", "12", reference=f"{REPO}:1").model_copy(update={"digest": DIGEST})


async def test_remembered_facts_answer_by_digest_and_fresh_tags(resolver: Resolver) -> None:
    known = learnt()
    taken = resolver.remember(known, [(f"{REPO}:1", DIGEST, 0.0), (f"{REPO}@{INDEX}", INDEX, 0.0)])
    assert taken == 2
    by_tag = await resolver.resolve(f"{REPO}:1")
    by_digest = await resolver.resolve(f"{REPO}@{DIGEST}")
    by_index = await resolver.resolve(f"{REPO}@{INDEX}")
    assert {by_tag.digest, by_digest.digest, by_index.digest} == {DIGEST}
    assert by_tag.reference == f"{REPO}:1"
    assert resolver.known_digest(f"{REPO}:1") == DIGEST


async def test_a_tag_seen_long_ago_is_not_trusted(resolver: Resolver) -> None:
    assert resolver.remember(learnt(), [(f"{REPO}:old", DIGEST, TAG_TTL)]) == 0
    with pytest.raises(DistroguardError):
        await resolver.resolve(f"{REPO}:old")  # asked the (absent) registry
    assert (await resolver.resolve(f"{REPO}@{DIGEST}")).digest == DIGEST


async def test_a_remembered_tag_lives_only_for_what_was_left_of_its_ttl(resolver: Resolver) -> None:
    resolver.remember(learnt(), [(f"{REPO}:1", DIGEST, TAG_TTL - 1.0)])
    assert resolver.cache.tags.peek(f"{REPO}:1") == DIGEST
    await asyncio.sleep(1.2)  # past the 1 s left, well within a fresh TTL
    assert resolver.cache.tags.peek(f"{REPO}:1") is None
    resolver.cache.tags.put(f"{REPO}:2", DIGEST)  # an answer of our own gets the whole TTL
    await asyncio.sleep(0.3)
    assert resolver.cache.tags.peek(f"{REPO}:2") == DIGEST


async def test_warm_answers_count_the_same_with_or_without_a_task(resolver: Resolver) -> None:
    resolver.remember(learnt(), [(f"{REPO}:1", DIGEST, 0.0)])
    stats = resolver.cache.stats
    assert resolver.cached(f"{REPO}:1") is not None
    after_cached = dict(stats)
    assert after_cached == {"failures.miss": 1, "tags.hit": 1, "facts.hit": 1}
    await resolver.resolve(f"{REPO}:1")
    assert {k: v - after_cached.get(k, 0) for k, v in stats.items()} == after_cached
    # A miss is left uncounted by `cached`: the `resolve` that follows counts it, once.
    before = dict(stats)
    assert resolver.cached(f"{REPO}@{INDEX}") is None
    assert dict(stats) == before
    with pytest.raises(DistroguardError):
        await resolver.resolve(f"{REPO}@{INDEX}")
    assert stats["facts.miss"] == 1
    assert stats["failures.miss"] == before["failures.miss"] + 1
