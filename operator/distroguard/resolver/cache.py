"""The cache tiers, each with the lifetime its data deserves.

| tier     | key                      | value      | lifetime                                      |
|----------|--------------------------|------------|-----------------------------------------------|
| tags     | registry/repo:tag        | digest     | short TTL: tags move                          |
| offers   | digest                   | Offer      | LRU only: what an index lists never changes   |
| facts    | digest + platform + mode | ImageFacts | LRU only: a digest's content never changes    |
| inventory| digest                   | a packed   | FIFO, bounded: what the hot `facts` and       |
|          |                          | record     | `offers` tiers were taught from elsewhere     |
| bases    | diff_id chain + mode     | LayerFacts | LRU only: images on a seen base cost 0 bytes  |
| claimed  | base name, digest and    | its digest | the tag TTL: the name may be a tag; images    |
|          | platform an image claims | + diff_ids | claiming one base read it once, not each      |
| failures | what was asked           | the error  | short TTL: no thundering herd, retry soon     |
| hosts    | registry host            | the error  | the failure TTL: a host that is down or       |
|          |                          |            | refused, whatever unique reference names it   |

The `inventory` tier is the cold side of `facts` and `offers`: records learnt elsewhere (the cluster's
ImageFacts objects, tens of thousands of them) kept packed, a few hundred bytes each, where a parsed
entry costs a few KB. A miss of either hot tier looks there, and the record found is unpacked into both
(`Inventory.unpack`, set by whoever packs), so every packed image answers warm while the memory stays
that of the hot tiers plus the packed bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

from cachetools import Cache, LRUCache, TLRUCache, TTLCache

from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts
from distroguard.registry.contract import Offer
from distroguard.scan.image import LayerFacts

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheSettings:
    tag_ttl: float = 60.0
    """Seconds a tag → digest answer is trusted (a pushed tag is seen after at most this)."""
    tag_entries: int = 10_000
    """Tags remembered."""
    facts_entries: int = 10_000
    """Digests whose facts are remembered (a few KB each)."""
    base_entries: int = 2_000
    """Base-layer chains whose facts are remembered."""
    failure_ttl: float = 30.0
    """Seconds a failure is answered from cache before the next real attempt."""
    failure_entries: int = 10_000
    """Failures remembered."""
    inventory_entries: int = 200_000
    """Digests under which packed records are kept (a record is kept under its digest, its platforms'
    manifest digests and the digests its references name: about 250 bytes a record, plus its keys)."""


class Generation:
    """How many times the tiers changed what they answer: a cached answer made at one generation is the
    same answer while the generation stays (`Resolver`'s warm answers are kept by it)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tier(Generic[K, V]):
    """A named cache that counts its hits and misses.

    `generation` is moved on by a `put` that may change an answer already given: one replacing a key the
    tier holds, or any put when `every_put` (a failure: it is asked before the facts). A new key answers
    what was a miss, and what was answered before stays true, so it moves nothing; nor does an eviction
    (the value forgotten was true, and stays true where it is still held)."""

    def __init__(
        self,
        name: str,
        store: LRUCache[K, V] | TTLCache[K, V] | TLRUCache[K, V],
        stats: Counter[str],
        generation: Generation | None = None,
        cold: Callable[[K], V | None] | None = None,
        *,
        every_put: bool = False,
    ) -> None:
        self.name = name
        self._store = store
        self._stats = stats
        self.hit_key = f"{name}.hit"
        self.miss_key = f"{name}.miss"
        self._generation = generation if generation is not None else Generation()
        self._every_put = every_put
        self._cold = cold
        """Asked on a miss: the value from a colder tier, which it puts in this one (None: not there)."""

    def get(self, key: K) -> V | None:
        value = self.peek(key)
        self.count(value is not None)
        return value

    def count(self, hit: bool) -> None:
        """Count one lookup, for callers that probe with `peek` (several keys for one question)."""
        self._stats[self.hit_key if hit else self.miss_key] += 1

    def peek(self, key: K) -> V | None:
        """Like `get`, uncounted: for re-checks on a path that already counted its miss.

        The warm admission path peeks four tiers per image, so this is `store.get` without its costs: an
        empty store (the failure tiers, nearly always) answers without reading the clock, and a present key
        is read once (cachetools' `get` asks `in` and then reads, each checking the entry's time). The same
        answers: a missing or expired entry is None, and a hit counts as recent use. A miss asks the colder
        tier behind this one, when there is one."""
        store = self._store
        if Cache.__len__(store):  # what is stored, expired entries included: else nothing to find
            try:
                return store[key]
            except KeyError:
                pass
        return None if self._cold is None else self._cold(key)

    def stored(self, key: K) -> V | None:
        """This tier's own entry (no colder tier asked), uncounted."""
        try:
            return self._store[key]
        except KeyError:
            return None

    def put(self, key: K, value: V) -> None:
        if self._every_put or key in self._store:
            self._generation.value += 1
        self._store[key] = value

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)


class Inventory:
    """Records learnt elsewhere, packed (opaque bytes), by every digest the hot tiers would hold them under.

    Bounded: past `entries` digests the earliest packed goes first. `unpack` (set by the packer) turns a
    record into hot entries; a record is unpacked again only after the hot tiers let its entries go, or
    when it was packed anew, so a key its record does not answer (another mode, a platform not judged)
    costs one unpack, not one per lookup.

    A digest is kept as its hash (a third of its string's size, at tens of thousands of digests): two
    digests of one hash would cost an unpack that answers nothing, never a wrong answer, since what a
    lookup gets is what the unpacked record taught the hot tiers under the digest asked."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._packed: dict[int, bytes] = {}
        self._missed: dict[Hashable, bytes] = {}
        """Keys whose record was unpacked without answering them, with that record."""
        self.unpack: Callable[[bytes], bool] | None = None
        """Teach the hot tiers a packed record; False when it is not readable (then it is dropped)."""

    def pack(self, digests: Iterable[str], record: bytes) -> None:
        """Keep `record` under each of `digests` (replacing what was packed under them)."""
        packed = self._packed
        for digest in digests:
            packed[hash(digest)] = record
        if len(packed) > self._entries:
            # The earliest tenth at once: removing a dict's first entries one by one makes each next
            # removal scan the ones removed before it.
            kept = islice(packed.items(), len(packed) - self._entries * 9 // 10, None)
            self._packed = dict(kept)

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, digest: object) -> bool:
        return hash(digest) in self._packed

    def packed_bytes(self) -> int:
        """Packed bytes held (each record once, however many digests name it)."""
        return sum(len(record) for record in {id(r): r for r in self._packed.values()}.values())

    def fill(self, digest: str, key: Hashable, hot: Callable[[], V | None]) -> V | None:
        """`hot()` after unpacking the record packed under `digest` (None when there is none, or it was
        unpacked before without answering `key`)."""
        record = self._packed.get(hash(digest))
        if record is None or self.unpack is None or self._missed.get(key) is record:
            return None
        if not self.unpack(record):
            self._packed.pop(hash(digest), None)
            return None
        found = hot()
        if found is None:
            if len(self._missed) >= self._entries:
                self._missed.clear()
            self._missed[key] = record
        return found


class _Lifetimes:
    """Each tag's lifetime: the TTL, or what is left of it for an answer learnt elsewhere earlier (an
    ImageFacts object): set `next` just before inserting."""

    def __init__(self, ttl: float, entries: int) -> None:
        self.ttl = ttl
        self.next: float | None = None
        self.ends: LRUCache[object, float] = LRUCache(entries)
        """Each tag's end, on the tier's clock, as it was last set (cachetools keeps it to itself)."""

    def __call__(self, key: object, value: object, now: float) -> float:
        lifetime, self.next = (self.ttl if self.next is None else self.next), None
        self.ends[key] = end = now + lifetime
        return end


class FactsCache:
    def __init__(self, settings: CacheSettings | None = None) -> None:
        s = settings or CacheSettings()
        self.settings = s
        self.stats: Counter[str] = Counter()
        self.generation = Generation()
        """Moved on whenever a tag, an offer or facts already held change, or a failure is stored (asked
        before the facts: even a failure of another image moves it, which costs a walk, never an answer)."""
        self._tag_lifetimes = _Lifetimes(s.tag_ttl, s.tag_entries)
        self._tag_store: TLRUCache[str, str] = TLRUCache(s.tag_entries, self._tag_lifetimes)
        self.tags: Tier[str, str] = Tier("tags", self._tag_store, self.stats, self.generation)
        self.inventory = Inventory(s.inventory_entries)
        self.facts: Tier[tuple[str, str, str], ImageFacts] = Tier(
            "facts", LRUCache(s.facts_entries), self.stats, self.generation, self._cold_facts
        )
        self.offers: Tier[str, Offer] = Tier(
            "offers", LRUCache(s.facts_entries), self.stats, self.generation, self._cold_offer
        )
        self.bases: Tier[tuple[tuple[str, ...], str], LayerFacts] = Tier(
            "bases", LRUCache(s.base_entries), self.stats
        )
        self.claimed: Tier[tuple[str, str | None, str], tuple[str, tuple[str, ...]]] = Tier(
            "claimed", TTLCache(s.base_entries, s.tag_ttl), self.stats
        )
        self.failures: Tier[tuple[str, str, str], DistroguardError] = Tier(
            "failures",
            TTLCache(s.failure_entries, s.failure_ttl),
            self.stats,
            self.generation,
            every_put=True,
        )
        self.hosts: Tier[str, DistroguardError] = Tier(
            "hosts", TTLCache(s.failure_entries, s.failure_ttl), self.stats
        )  # asked only when the cache has no answer: it changes none
        self._seen_tags: LRUCache[str, str] = LRUCache(s.tag_entries)
        """Tags resolved before, their TTL passed or not: such a tag is asked again by HEAD (it most often
        still names a digest whose facts are here), a new one by GET (its manifest is needed next)."""
        self._read_bottoms: LRUCache[str, bool] = LRUCache(s.base_entries)
        """Bottom layers (compressed digests) read before: an image on one most likely finds its base here."""

    def _cold_facts(self, key: tuple[str, str, str]) -> ImageFacts | None:
        if key[0] not in self.inventory:
            return None
        return self.inventory.fill(key[0], key, lambda: self.facts.stored(key))

    def _cold_offer(self, digest: str) -> Offer | None:
        if digest not in self.inventory:
            return None
        return self.inventory.fill(digest, digest, lambda: self.offers.stored(digest))

    def put_tag(self, tag: str, digest: str) -> None:
        self.tags.put(tag, digest)
        self._seen_tags[tag] = digest

    def count_warm(self, tagged: bool, failures: bool) -> None:
        """Count an answer kept from the tiers as they count reading it: a hit in the tag tier (when asked
        by tag) and the facts tier, and a miss in the failure tier (when `failures` was asked)."""
        stats = self.stats
        if tagged:
            stats[self.tags.hit_key] += 1
        stats[self.facts.hit_key] += 1
        if failures:
            stats[self.failures.miss_key] += 1

    def tag_end(self, tag: str) -> float | None:
        """When `tag`'s answer stops being trusted, on `now`'s clock (None: not known)."""
        return self._tag_lifetimes.ends.get(tag)

    def now(self) -> float:
        """The tag tier's clock."""
        return float(self._tag_store.timer())

    def seen_tag(self, tag: str) -> bool:
        """Whether `tag` was resolved before (however long ago, as far as this bounded memory goes)."""
        return tag in self._seen_tags

    def read_bottom(self, digest: str) -> None:
        self._read_bottoms[digest] = True

    def bottom_read(self, digest: str) -> bool:
        """Whether a bottom layer of this (compressed) digest was read before."""
        return digest in self._read_bottoms

    def remember_tag(self, tag: str, digest: str, age: float) -> bool:
        """Trust `tag` -> `digest`, learnt `age` seconds ago, for what is left of the tag TTL; False (and
        nothing remembered) when nothing is left."""
        left = self.settings.tag_ttl - max(0.0, age)
        if left <= 0:
            return False
        self._tag_lifetimes.next = left
        try:
            self.put_tag(tag, digest)
        finally:
            self._tag_lifetimes.next = None
        return True
