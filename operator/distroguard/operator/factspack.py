"""ImageFacts objects packed into the resolver's `inventory` tier: every fact of the cluster's inventory warm
in a replica, at a few hundred bytes an image.

A listed object's `spec` is kept as its JSON, compressed with zstd against a dictionary made of what every
record repeats (field names, media types, platforms), under each digest a lookup may name: the image's,
its platforms' manifests', and those its references resolved to. Only when a lookup misses the hot tiers is
the record read (`unpack`: validated as a `FactsRecord` and taught to the resolver as `seed` would), so
start-up does per object what answers no review yet (JSON, a few checks, the compression) and nothing
more; a record found malformed then is dropped and logged, as `parse_record` logs it.

Two halves, for the two threads of `FactsWatch`: `Packer.pack` in the watch's thread (no shared state),
`take` on the event loop's (the resolver's caches are the loop's).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from distroguard.audit.records import offer_of
from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, ImageRef
from distroguard.model.record import FactsRecord
from distroguard.resolver import Resolver

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

logger = logging.getLogger(__name__)

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHAIN = re.compile(r"[0-9a-f]{64}")
_SAMPLE = (
    b'{"digest":"sha256:","mode":"runtimes","access":"public","references":[{"image":"","digest":"sha256:",'
    b'"observedAt":"2026-01-01T00:00:00.000000Z"}],"image":"docker.io/library/","single":true,"offers":[{'
    b'"platform":"linux/amd64","digest":"sha256:","size":1000,"mediaType":"application/vnd.oci.image.'
    b'manifest.v1+json"},{"platform":"linux/arm64/v8","digest":"sha256:","size":1000,"mediaType":'
    b'"application/vnd.docker.distribution.manifest.v2+json"}],"platforms":[{"platform":"linux/amd64",'
    b'"manifestDigest":"sha256:","os":{"id":"debian","versionId":"12","codename":"bookworm","prettyName":'
    b'"Debian GNU/Linux 12 (bookworm)","idLike":["ubuntu","alpine","rhel","fedora"]},"libc":{"family":'
    b'"glibc","version":"2.36"},"runtimes":[{"name":"python","version":"3.12"}],"eol":{"state":"active",'
    b'"date":"2028-06-30","extendedUntil":"","subject":""},"evidence":[{"fact":"os","source":"file","path":'
    b'"etc/os-release","layer":"sha256:","detail":""},{"fact":"libc","source":"config"}],"imageSize":0,'
    b'"base":{"reference":"","digest":"sha256:","how":"known-base","verified":true},"chain":""}],'
    b'"judgedOn":"linux/amd64","resolvedAt":"2026-01-01T00:00:00.000000Z","lastSeen":"2026-01-01T00:00:00Z"}'
)
_DICTIONARY = zstd.ZstdDict(_SAMPLE, is_raw=True)
"""What records share, so that a compressed record is mostly its digests (the one process that packs
unpacks: the dictionary is never stored)."""


@dataclass(frozen=True, slots=True)
class Packed:
    """One public record, ready for the loop: its packed bytes and what is learnt from it at once."""

    record: bytes
    digests: tuple[str, ...]
    """Where a lookup finds it: the image's digest, its platforms' manifests', its references' targets."""
    tags: tuple[tuple[str, str, float], ...]
    """(tag, digest, seconds since it was seen) of each reference by tag, its TTL not yet passed."""
    chains: tuple[str, ...]
    """Its platforms' layer chains: bases of the images built on it, known from the start."""
    image: str
    digest: str


class Packer:
    """Packs listed or watched objects; one per thread (its compressor is not shared)."""

    def __init__(self, tag_ttl: float) -> None:
        self._tag_ttl = tag_ttl
        self._compressor = zstd.ZstdCompressor(level=1, zstd_dict=_DICTIONARY)

    def pack(self, body: Mapping[str, Any], now: datetime) -> Packed | None:
        """An object's public record packed; None for a private one (an inventory entry only: a namespace
        without the credentials must not be answered from it) and for one that is not ours."""
        spec = body.get("spec")
        if not isinstance(spec, dict) or spec.get("access", "public") != "public":
            return None
        digest, platforms = spec.get("digest"), spec.get("platforms")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest) or not isinstance(platforms, list):
            return None
        if not platforms:
            return None
        digests = {digest: None}
        chains: list[str] = []
        for platform in platforms:
            if not isinstance(platform, dict):
                continue
            manifest, chain = platform.get("manifestDigest"), platform.get("chain")
            if isinstance(manifest, str):
                digests[manifest] = None
            if isinstance(chain, str) and _CHAIN.fullmatch(chain):
                chains.append(chain)
        tags = self._references(spec.get("references"), digests, now)
        image = spec.get("image")
        return Packed(
            record=self._compressor.compress(orjson.dumps(spec), zstd.ZstdCompressor.FLUSH_FRAME),
            digests=tuple(digests),
            tags=tags,
            chains=tuple(chains),
            image=image if isinstance(image, str) else "",
            digest=digest,
        )

    def _references(
        self, references: object, digests: dict[str, None], now: datetime
    ) -> tuple[tuple[str, str, float], ...]:
        """Each reference's target into `digests`; the tags still trusted. A reference is parsed only when
        it could add a digest or trusts a tag (what `Resolver.remember` would take of it)."""
        if not isinstance(references, list):
            return ()
        tags: list[tuple[str, str, float]] = []
        for reference in references:
            if not isinstance(reference, dict):
                continue
            image, resolved = reference.get("image"), reference.get("digest")
            if not isinstance(image, str):
                continue
            pinned = image.rpartition("@")[2] if "@" in image else None
            age = math.inf
            if pinned is None:
                if not isinstance(resolved, str):
                    continue
                age = self._age(reference.get("observedAt"), now)
                if resolved in digests and age >= self._tag_ttl:
                    continue
            elif pinned in digests:
                continue
            try:
                ref = ImageRef.parse(image)
            except DistroguardError:
                continue
            target = ref.digest or resolved
            if not isinstance(target, str):
                continue
            digests[target] = None
            if ref.digest is None and age < self._tag_ttl:
                tags.append((str(ref), target, age))
        return tuple(tags)

    @staticmethod
    def _age(observed: object, now: datetime) -> float:
        if not isinstance(observed, str):
            return math.inf
        try:
            return max(0.0, (now - datetime.fromisoformat(observed)).total_seconds())
        except (ValueError, TypeError):
            return math.inf


def attach(resolver: Resolver) -> None:
    """Let `resolver`'s inventory tier read what `take` packs into it."""
    resolver.cache.inventory.unpack = functools.partial(unpack, resolver)


def take(resolver: Resolver, packed: Sequence[Packed], *, now_too: bool = False) -> None:
    """On the loop's thread (after `attach`): `packed` into `resolver`'s inventory tier, tags and bases at
    once; with `now_too`, into its hot tiers as well (a watched change replaces what they hold)."""
    cache = resolver.cache
    for item in packed:
        cache.inventory.pack(item.digests, item.record)
        for tag, digest, age in item.tags:
            cache.remember_tag(tag, digest, age)
        for chain in item.chains:
            resolver.bases.learn_key(chain, item.image, item.digest)
        if now_too:
            unpack(resolver, item.record)


def unpack(resolver: Resolver, record: bytes) -> bool:
    """Teach `resolver`'s hot tiers a packed record's facts and offer (its tags were taken when it was
    packed); False when it is not a readable record (logged)."""
    spec = orjson.loads(zstd.decompress(record, zstd_dict=_DICTIONARY))
    try:
        read = FactsRecord.model_validate(_deduplicated(spec, {}))
    except ValidationError as exc:
        logger.warning("ImageFacts of %s ignored: %s", spec.get("digest"), exc.errors(include_url=False)[:3])
        return False
    references = [(r.image, r.digest, math.inf) for r in read.references]
    resolver.remember([_sharing(facts) for facts in read.facts()], references, offer_of(read))
    return True


SHARED_KEPT = 4096
"""Distinct OS releases, C libraries and runtime lists shared at most (then the table starts again)."""
_shared: dict[object, Any] = {}


def _sharing(facts: ImageFacts) -> ImageFacts:
    """`facts` with its OS release, C library, runtimes and set of fields given the very objects of other
    facts that have the same (the hot tiers hold thousands of images on a handful of distributions: a
    model, or a set, costs more than the strings it holds). Nothing changes them: models are frozen, and
    pydantic copies a set of fields before it adds to it."""
    if len(_shared) >= SHARED_KEPT:
        _shared.clear()
    values = dict(facts.__dict__)
    for name in ("os", "libc", "runtimes"):
        if values[name] is not None:
            values[name] = _shared.setdefault(values[name], values[name])
    given = facts.model_fields_set
    fields = _shared.setdefault(frozenset(given), given)
    return ImageFacts.model_construct(_fields_set=fields, **values)


def _deduplicated(value: Any, seen: dict[str, str]) -> Any:
    """`value` (parsed JSON) with equal strings made one object: the validated record keeps the strings it
    was given, and a record names its digests several times. Short ones are interned across records
    (platforms, media types, distribution names and versions)."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= INTERNED_LENGTH else seen.setdefault(value, value)
    if isinstance(value, dict):
        return {key: _deduplicated(item, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [_deduplicated(item, seen) for item in value]
    return value


INTERNED_LENGTH = 48
"""Strings up to this long are interned (a digest is 71 characters: deduplicated within its record)."""
