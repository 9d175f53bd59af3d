"""Facts learnt elsewhere (an ImageFacts object) answer lookups without a registry: by digest always, by
tag for what is left of the tag TTL; a record's facts per platform and what the image offers answer a
review judging several platforms too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from distroguard.audit.records import Seen, offer_of, records_of
from distroguard.audit.results import summarize
from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, Platform
from distroguard.model.facts import ImagePlatforms
from distroguard.model.platform import platforms_text
from distroguard.model.record import FactsRecord
from distroguard.operator.audit.inventorystore import seed
from distroguard.registry import mediatypes as mt
from distroguard.registry.client import RegistryClient
from distroguard.registry.contract import Offer
from distroguard.registry.manifest import Descriptor
from distroguard.resolver import CacheSettings, Resolver, ResolverSettings
from distroguard.resolver.routing import RoutedResolver
from support.lifecycles import NOW, TODAY, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog

DIGEST = "sha256:" + "ab" * 32
INDEX = "sha256:" + "cd" * 32
# Nothing listens on port 1: any request the resolver made would fail the lookup.
REPO = "127.0.0.1:1/team/app"
CATALOG = make_catalog(
    product("debian", "Debian", cycle("12", eol=days(400))),
    product("alpine-linux", "Alpine Linux", cycle("3.20", eol=days(200))),
)
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
    taken = resolver.remember([known], [(f"{REPO}:1", DIGEST, 0.0), (f"{REPO}@{INDEX}", INDEX, 0.0)])
    assert taken == 2
    by_tag = await resolver.resolve(f"{REPO}:1")
    by_digest = await resolver.resolve(f"{REPO}@{DIGEST}")
    by_index = await resolver.resolve(f"{REPO}@{INDEX}")
    assert {by_tag.digest, by_digest.digest, by_index.digest} == {DIGEST}
    assert by_tag.reference == f"{REPO}:1"
    assert resolver.known_digest(f"{REPO}:1") == DIGEST


async def test_a_tag_seen_long_ago_is_not_trusted(resolver: Resolver) -> None:
    assert resolver.remember([learnt()], [(f"{REPO}:old", DIGEST, TAG_TTL)]) == 0
    with pytest.raises(DistroguardError):
        await resolver.resolve(f"{REPO}:old")  # asked the (absent) registry
    assert (await resolver.resolve(f"{REPO}@{DIGEST}")).digest == DIGEST


async def test_a_remembered_tag_lives_only_for_what_was_left_of_its_ttl(resolver: Resolver) -> None:
    resolver.remember([learnt()], [(f"{REPO}:1", DIGEST, TAG_TTL - 1.0)])
    assert resolver.cache.tags.peek(f"{REPO}:1") == DIGEST
    await asyncio.sleep(1.2)  # past the 1 s left, well within a fresh TTL
    assert resolver.cache.tags.peek(f"{REPO}:1") is None
    resolver.cache.tags.put(f"{REPO}:2", DIGEST)  # an answer of our own gets the whole TTL
    await asyncio.sleep(0.3)
    assert resolver.cache.tags.peek(f"{REPO}:2") == DIGEST


async def test_warm_answers_count_the_same_with_or_without_a_task(resolver: Resolver) -> None:
    resolver.remember([learnt()], [(f"{REPO}:1", DIGEST, 0.0)])
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


# --------------------------------------------------- an ImageFacts record: facts per platform, and the offer

ARM_MANIFEST = "sha256:" + "a1" * 32
AMD_MANIFEST = "sha256:" + "a2" * 32


def mixed_record() -> FactsRecord:
    """The record the audit writes of an index offering amd64 Debian and arm64 Alpine, both judged."""
    index = f"{REPO}@{INDEX}"
    debian = facts("debian", "12", reference=index).model_copy(
        update={"digest": INDEX, "platform": "linux/amd64", "manifest_digest": AMD_MANIFEST}
    )
    alpine = facts("alpine", "3.20.3", libc="musl", reference=index).model_copy(
        update={"digest": INDEX, "platform": "linux/arm64/v8", "manifest_digest": ARM_MANIFEST}
    )
    entries = (
        Descriptor(mt.OCI_MANIFEST, AMD_MANIFEST, 1000, Platform.parse("linux/amd64")),
        Descriptor(mt.OCI_MANIFEST, ARM_MANIFEST, 1000, Platform.parse("linux/arm64/v8")),
    )
    seen = [
        Seen(
            f"{REPO}:1",
            tuple(summarize(f"{REPO}:1", f, CATALOG, TODAY) for f in (debian, alpine)),
            INDEX,
            "public",
            Offer(INDEX, entries),
        )
    ]
    return records_of(seen, NOW)[INDEX]


def test_a_record_holds_each_platforms_facts_and_what_the_image_offers() -> None:
    record = FactsRecord.model_validate(mixed_record().model_dump(mode="json", by_alias=True))
    assert [p.platform for p in record.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert [(p.os.id if p.os else None, p.libc.family) for p in record.platforms] == [
        ("debian", "glibc"),
        ("alpine", "musl"),
    ]
    assert [(o.platform, o.digest) for o in record.offers] == [
        ("linux/amd64", AMD_MANIFEST),
        ("linux/arm64/v8", ARM_MANIFEST),
    ]
    offer = offer_of(record)
    assert offer is not None
    assert (offer.digest, offer.platforms, offer.single) == (INDEX, ("linux/amd64", "linux/arm64/v8"), False)


async def test_a_seeded_record_answers_every_platform_without_a_registry(resolver: Resolver) -> None:
    assert seed(resolver, mixed_record(), NOW) == 1
    both = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
    for image in (f"{REPO}:1", f"{REPO}@{INDEX}"):
        # Nothing listens on port 1: an answer at all means no request was made.
        found = await resolver.resolve_platforms(image, both, budget=1.0)
        assert [(f.platform, f.libc.family) for f in found.facts] == [
            ("linux/amd64", "glibc"),
            ("linux/arm64/v8", "musl"),
        ]
        assert resolver.cached_platforms(image, both[1:]) is not None
    assert resolver.cache.stats["facts.hit"] >= 4


def test_a_record_of_an_older_distroguard_seeds_nothing(resolver: Resolver) -> None:
    """An object written before facts were kept per platform (top-level os, libc...) reads as a record
    without platforms: nothing to seed; the next audit writes it again in the new shape."""
    old = {
        "digest": DIGEST,
        "platform": "linux/amd64",
        "image": f"{REPO}:1",
        "os": {"id": "debian", "versionId": "12"},
        "resolvedAt": NOW.isoformat(),
        "lastSeen": NOW.isoformat(),
    }
    record = FactsRecord.model_validate(old)
    assert record.platforms == ()
    assert seed(resolver, record, NOW) == 0


# ------------------------------------------- the warm answer: kept while the tiers would give it again

BOTH = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
TAGGED = f"{REPO}:1"


def _counted(resolver: Resolver, ask: Callable[[], object]) -> dict[str, int]:
    before = dict(resolver.cache.stats)
    ask()
    return {k: v - before.get(k, 0) for k, v in resolver.cache.stats.items() if v != before.get(k, 0)}


def test_a_warm_answer_is_kept_and_counted_as_the_walk_counts_it(resolver: Resolver) -> None:
    seed(resolver, mixed_record(), NOW)
    first = resolver.cached_platforms(TAGGED, BOTH)
    walked = _counted(resolver, lambda: resolver.cached_platforms(TAGGED, BOTH))
    again = resolver.cached_platforms(TAGGED, BOTH)
    assert first is not None
    assert again is first  # made once, then kept
    assert walked == {"failures.miss": 1, "tags.hit": 1, "facts.hit": 1}
    assert _counted(resolver, lambda: resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH)) == {
        "failures.miss": 1,
        "facts.hit": 1,
    }


def test_a_tag_moved_to_another_digest_is_not_answered_from_the_kept_answer(resolver: Resolver) -> None:
    seed(resolver, mixed_record(), NOW)
    assert resolver.cached_platforms(TAGGED, BOTH) is not None
    resolver.cache.put_tag(TAGGED, DIGEST)  # pushed again: a digest whose offer is not known here
    assert resolver.cached_platforms(TAGGED, BOTH) is None
    assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is not None  # the digest's facts stay true


async def test_a_kept_answer_ends_with_its_tag(resolver: Resolver) -> None:
    seed(resolver, mixed_record(), NOW)
    assert resolver.cache.remember_tag(TAGGED, INDEX, TAG_TTL - 0.5)  # half a second left
    assert resolver.cached_platforms(TAGGED, BOTH) is not None
    await asyncio.sleep(0.7)
    assert resolver.cached_platforms(TAGGED, BOTH) is None


def test_a_failure_stored_after_a_kept_answer_is_answered(resolver: Resolver) -> None:
    seed(resolver, mixed_record(), NOW)
    assert resolver.cached_platforms(TAGGED, BOTH) is not None
    resolver.cache.failures.put((TAGGED, platforms_text(BOTH), "fast"), DistroguardError("refused"))
    assert resolver.cached_platforms(TAGGED, BOTH) is None


async def test_a_routed_lookup_answers_warm_images_at_once_and_counts_each_once(resolver: Resolver) -> None:
    seed(resolver, mixed_record(), NOW)
    routed = RoutedResolver(anonymous=resolver)
    cold = "127.0.0.1:1/team/other:1"  # nothing listens: a lookup fails
    asked = [TAGGED, cold, f"{REPO}@{INDEX}", TAGGED]
    before = dict(resolver.cache.stats)
    found = await routed.resolve_many_platforms(asked, platforms=BOTH, budget=2.0)
    counted = {k: v - before.get(k, 0) for k, v in resolver.cache.stats.items()}
    assert list(found) == [TAGGED, cold, f"{REPO}@{INDEX}"]  # as asked, each once
    assert isinstance(found[cold], DistroguardError)
    warm = found[TAGGED]
    assert isinstance(warm, ImagePlatforms)
    assert [f.digest for f in warm.facts] == [INDEX, INDEX]
    # Two warm images, each counted once; the cold one: a tag miss, then its failure.
    assert (counted["facts.hit"], counted["tags.hit"], counted["tags.miss"]) == (2, 1, 1)
