"""ImageFacts objects packed into the resolver's inventory tier: each answers warm when first asked (unpacked
then, not at start), a tag for what is left of its TTL only, a private record never; a malformed record is
dropped when read; a record is read again only when the hot tiers let it go."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from test_resolver_remember import AMD_MANIFEST, ARM_MANIFEST, DIGEST, INDEX, REPO, mixed_record

from distroguard.errors import DistroguardError
from distroguard.model import Platform
from distroguard.model.record import FactsRecord
from distroguard.operator import factspack
from distroguard.operator.factspack import Packer, attach, take
from distroguard.registry.client import RegistryClient
from distroguard.resolver import CacheSettings, Resolver, ResolverSettings
from distroguard.resolver.cache import Inventory
from support.lifecycles import NOW

#: Long beside the sleeps below, so that a slow machine cannot expire a tag early.
TAG_TTL = 30.0
BOTH = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    settings = ResolverSettings(cache=CacheSettings(tag_ttl=TAG_TTL, facts_entries=4), lookup_timeout=2.0)
    async with RegistryClient() as client:
        resolved = Resolver(client, settings)
        attach(resolved)
        yield resolved


def listed(record: FactsRecord | dict[str, Any]) -> dict[str, Any]:
    """The object as the API server lists it (JSON, camelCase)."""
    spec = record if isinstance(record, dict) else record.model_dump(mode="json", by_alias=True)
    return {"apiVersion": "distroguard.dev/v1alpha1", "kind": "ImageFacts", "spec": spec}


def seen(record: FactsRecord, seconds_ago: float) -> FactsRecord:
    """`record` with its references seen `seconds_ago`."""
    when = NOW - timedelta(seconds=seconds_ago)
    return record.model_copy(
        update={"references": tuple(r.model_copy(update={"observed_at": when}) for r in record.references)}
    )


def pack(resolver: Resolver, *records: FactsRecord | dict[str, Any]) -> int:
    packer = Packer(TAG_TTL)
    packed = [p for p in (packer.pack(listed(r), NOW) for r in records) if p is not None]
    take(resolver, packed)
    return len(packed)


async def test_a_packed_record_is_read_when_first_asked_and_answers_every_platform(
    resolver: Resolver,
) -> None:
    assert pack(resolver, mixed_record()) == 1
    assert len(resolver.cache.facts) == len(resolver.cache.offers) == 0  # nothing read at start
    for image in (f"{REPO}:1", f"{REPO}@{INDEX}"):
        # Nothing listens on port 1: an answer at all means no request was made.
        found = await resolver.resolve_platforms(image, BOTH, budget=1.0)
        assert [(f.platform, f.libc.family) for f in found.facts] == [
            ("linux/amd64", "glibc"),
            ("linux/arm64/v8", "musl"),
        ]
    by_manifest = await resolver.resolve(
        f"{REPO}@{ARM_MANIFEST}", Platform.parse("linux/arm64/v8"), budget=1.0
    )
    assert (by_manifest.digest, by_manifest.libc.family) == (INDEX, "musl")
    assert resolver.cache.offers.peek(INDEX) is not None


async def test_a_tag_is_trusted_for_what_is_left_of_its_ttl(resolver: Resolver) -> None:
    pack(resolver, seen(mixed_record(), TAG_TTL - 1.0))
    assert resolver.cache.tags.peek(f"{REPO}:1") == INDEX
    assert resolver.cached_platforms(f"{REPO}:1", BOTH) is not None
    await asyncio.sleep(1.2)  # past the 1 s left, well within a fresh TTL
    assert resolver.cache.tags.peek(f"{REPO}:1") is None
    assert resolver.cached_platforms(f"{REPO}:1", BOTH) is None
    assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is not None  # the digest stays known


async def test_a_tag_seen_long_ago_is_not_trusted(resolver: Resolver) -> None:
    pack(resolver, seen(mixed_record(), TAG_TTL + 5.0))
    assert resolver.cache.tags.peek(f"{REPO}:1") is None
    with pytest.raises(DistroguardError):
        await resolver.resolve_platforms(f"{REPO}:1", BOTH, budget=1.0)  # asked the (absent) registry
    assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is not None


async def test_a_private_record_is_not_served(resolver: Resolver) -> None:
    private = mixed_record().model_copy(update={"access": "private"})
    assert pack(resolver, private) == 0
    assert len(resolver.cache.inventory) == 0
    assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is None
    assert resolver.cache.tags.peek(f"{REPO}:1") is None


def test_a_record_without_platforms_or_not_ours_packs_nothing(resolver: Resolver) -> None:
    spec = mixed_record().model_dump(mode="json", by_alias=True)
    assert pack(resolver, {**spec, "platforms": []}) == 0
    assert pack(resolver, {**spec, "digest": "sha256:short"}) == 0
    assert Packer(TAG_TTL).pack({"spec": "not a record"}, NOW) is None
    assert len(resolver.cache.inventory) == 0


async def test_a_malformed_record_is_dropped_when_read(
    resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    spec = mixed_record().model_dump(mode="json", by_alias=True)
    spec["platforms"][0]["libc"] = {"family": "no such libc"}
    assert pack(resolver, spec) == 1
    with caplog.at_level(logging.WARNING):
        assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is None
    assert "ignored" in caplog.text
    assert INDEX not in resolver.cache.inventory
    assert resolver.cached_platforms(f"{REPO}@{INDEX}", BOTH) is None  # no second attempt
    assert caplog.text.count("ignored") == 1


async def test_a_key_the_record_does_not_answer_reads_it_once(
    resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack(resolver, mixed_record())
    reads = []
    real = factspack.unpack

    def counted(target: Resolver, record: bytes) -> bool:
        reads.append(record)
        return real(target, record)

    monkeypatch.setattr(factspack, "unpack", counted)
    attach(resolver)
    for _ in range(3):  # another mode than the record's: no answer, and one read only
        assert resolver.cached(f"{REPO}@{AMD_MANIFEST}", BOTH[0], mode="thorough") is None
    assert len(reads) == 1
    assert resolver.cached(f"{REPO}@{AMD_MANIFEST}", BOTH[0], mode="fast") is not None
    assert len(reads) == 1  # the same read answered it


async def test_a_record_the_hot_tiers_let_go_is_read_again(resolver: Resolver) -> None:
    """The hot tiers keep `facts_entries` (4 here); the inventory keeps every record packed."""
    records = [
        mixed_record().model_copy(update={"digest": f"sha256:{n:064x}", "references": ()})
        for n in range(1, 9)
    ]
    assert pack(resolver, *records) == 8
    for _ in range(2):
        for record in records:
            found = resolver.cached_platforms(f"{REPO}@{record.digest}", BOTH)
            assert found is not None
            assert len(found.facts) == 2
    assert len(resolver.cache.offers) <= 4


def test_the_inventory_keeps_the_latest_digests_within_its_bound() -> None:
    inventory = Inventory(entries=10)
    for n in range(25):
        inventory.pack([f"d{n}"], b"record %d" % n)
    assert 9 <= len(inventory) <= 10
    assert "d24" in inventory
    assert "d0" not in inventory
    assert inventory.packed_bytes() == sum(len(b"record %d" % n) for n in range(25) if f"d{n}" in inventory)


def test_a_digest_packed_again_replaces_its_record(resolver: Resolver) -> None:
    assert pack(resolver, mixed_record()) == 1
    size = len(resolver.cache.inventory)
    assert pack(resolver, mixed_record()) == 1
    assert len(resolver.cache.inventory) == size
    assert DIGEST not in resolver.cache.inventory  # only what the record names


async def test_records_read_share_what_they_have_in_common(resolver: Resolver) -> None:
    """Two images on one distribution: their facts are equal to what `FactsRecord.facts` makes, and hold
    the same OS release, C library and set of fields (one object each, however many images)."""
    records = [
        mixed_record().model_copy(update={"digest": f"sha256:{n:064x}", "references": ()}) for n in (1, 2)
    ]
    pack(resolver, *records)
    read = []
    for record in records:
        found = resolver.cached_platforms(f"{REPO}@{record.digest}", BOTH)
        assert found is not None
        assert [f.model_dump() for f in found.facts] == [
            f.model_copy(update={"reference": f"{REPO}@{record.digest}"}).model_dump() for f in record.facts()
        ]
        kept = resolver.cache.facts.stored((record.digest, "linux/amd64", record.mode))
        assert kept is not None
        read.append(kept)
    first, second = read
    assert first.os is second.os
    assert first.libc is second.libc
    assert first.model_fields_set is second.model_fields_set
