"""Image → ImageFacts: cache tiers, single-flight, deadlines, and background completion.

The one place where registry I/O and the pure scanner meet. Bytes flow bottom layer first; in `fast` mode
reading stops as soon as the layers read so far decide the OS and the libc.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distroguard.errors import (
    DeadlineExceeded,
    DistroguardError,
    PlatformNotFound,
    RegistryAddressRefused,
    RegistryError,
    RegistryUnreachable,
    ScanLimitExceeded,
    SourceError,
)
from distroguard.model import Evidence, ImageFacts, ImageRef, Platform, ScanMode
from distroguard.model.facts import BaseImage, ImagePlatforms
from distroguard.model.platform import DEFAULT_PLATFORM, MAX_PLATFORMS, platforms_text
from distroguard.model.reference import is_local_image
from distroguard.registry.client import RegistryClient
from distroguard.registry.contract import Offer, read_offer
from distroguard.registry.manifest import (
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    parse_config,
    parse_manifest,
)
from distroguard.registry.source import ImageSource, RegistrySource, ResolvedImage, open_source
from distroguard.resolver.bases import Claim, KnownBases, chain_key, claimed_base, judge_claim, unverified
from distroguard.resolver.cache import CacheSettings, FactsCache
from distroguard.resolver.fairness import Gate
from distroguard.resolver.singleflight import Outcome, SingleFlight, settle
from distroguard.scan.image import ImageScan, LayerFacts, program_paths, with_config_runtimes
from distroguard.scan.layers import ScanLimits
from distroguard.scan.runtimes import detect_runtimes


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    cache: CacheSettings = field(default_factory=CacheSettings)
    """Sizes and lifetimes of the cache tiers."""
    limits: ScanLimits = field(default_factory=ScanLimits)
    """Hard bounds of one image scan."""
    max_config_bytes: int = 8 * 1024 * 1024
    """Largest image config blob read (real ones are a few KB)."""
    max_layers: int = 500
    """Images with more layers are refused (the Docker limit is 127)."""
    max_runtime_bytes: int = 256 * 1024 * 1024
    """`runtimes` mode: compressed layer bytes read past the layers that decide OS and C library, looking
    for a runtime the config does not announce; a layer that would pass it is not read."""
    lookup_timeout: float = 120.0
    """Seconds one registry lookup may take in all, background completion included: every request,
    retry and Retry-After wait happens before it. Past it the lookup fails naming the request under
    way, and the failure is cached like any other.
    """


LookupKey = tuple[str, str, ScanMode]
Fetched = tuple[str, bytes]
"""A manifest or index read while resolving its tag: its media type as served and its body, verified against
the digest it was taken for."""
Wanted = tuple[Platform, ...] | None
"""The platforms asked for; None: every platform the image offers."""
_RECENT_KEPT = 4096
"""Recent multi-platform answers kept at most (then forgotten all at once)."""


@dataclass(frozen=True, slots=True)
class _Warm:
    """A multi-platform answer the cache tiers gave, kept while they would give it again: until the
    cache's generation moves or the tag it was read through ends (`end`; None: asked by digest)."""

    wanted: Wanted
    answer: ImagePlatforms
    generation: int
    end: float | None


#: Asked of a local image to learn what it offers: no image runs on it, so the refusal lists them.
_PROBE = Platform(os="distroguard-probe", architecture="none")


def _answers(facts: LayerFacts, mode: ScanMode, layers: int) -> bool:
    """Whether a base's facts answer for an image of `layers` layers built on it."""
    return mode != "runtimes" or bool(facts.file_runtimes) or facts.layers_read == layers


def _scan_note(mode: ScanMode, layer_mode: ScanMode, read: int, total: int, seen: bool, bounded: bool) -> str:
    """What the scan read, for the evidence."""
    if seen:
        return (
            f"{mode} mode: the bottom {read} of {total} layers were seen before in another image "
            "(base-layer cache): no layer bytes read"
        )
    if mode == "thorough":
        return f"thorough mode: read all {total} layers (exact squashed view)"
    if mode == "fast":
        return f"fast mode: read {read} of {total} layers, bottom up, until OS and libc were decided"
    if layer_mode == "fast":
        return (
            f"runtimes mode: read {read} of {total} layers, bottom up, until OS and libc were decided "
            "(the config announces the runtime)"
        )
    if bounded:
        return (
            f"runtimes mode: read {read} of {total} layers; the layers above would pass --max-runtime-bytes, "
            "so a runtime installed there is not seen"
        )
    return (
        f"runtimes mode: read {read} of {total} layers, bottom up, until OS, libc and a runtime were decided"
    )


@functools.lru_cache(maxsize=4096)
def _parse(image: str) -> ImageRef:
    """Parsing is pure, so the hot path parses each distinct reference once."""
    return ImageRef.parse(image)


def _as_asked(facts: ImageFacts, image: str, digest: str | None = None) -> ImageFacts:
    """The facts of a digest, labelled with the reference this caller used (and, for one platform's facts
    shared by several indexes, the digest this caller's reference named)."""
    update: dict[str, object] = {}
    if facts.reference != image:
        update["reference"] = image
    if digest is not None and facts.digest != digest:
        update["digest"] = digest
    return facts.model_copy(update=update) if update else facts


def _chosen(offer: Offer, wanted: Wanted) -> tuple[Descriptor, ...]:
    """The entries of `offer` judged for `wanted`: a single-platform image's one, whatever is wanted."""
    return offer.choose(wanted)


HOST_FAILURES = (RegistryUnreachable, RegistryAddressRefused)
"""Failures of a registry host rather than of one image: remembered for the host too (`FactsCache.hosts`), so
that unique references to one bad host cost one lookup per failure TTL, not one each. A host that answered
(a 5xx or 429 for one repository) is not one of them: its other images may be fine."""


def _judged(claim: Claim, read: tuple[str, tuple[str, ...]] | str, diff_ids: tuple[str, ...]) -> BaseImage:
    """The claim, against the base's layers as read (or unverified, saying why they could not be)."""
    if isinstance(read, str):
        return unverified(claim, read)
    digest, base_diff_ids = read
    return judge_claim(claim, base_diff_ids, diff_ids, digest)


def _platform_key(entry: Descriptor) -> str:
    return str(entry.platform or DEFAULT_PLATFORM)


class Resolver:
    """Resolve image references to facts; safe to share between concurrent callers."""

    def __init__(self, client: RegistryClient, settings: ResolverSettings | None = None) -> None:
        self.client = client
        self.settings = settings or ResolverSettings()
        self.cache = FactsCache(self.settings.cache)
        self._lookups: SingleFlight[LookupKey, ImageFacts] = SingleFlight()
        self._tags: SingleFlight[str, tuple[str, Fetched | None]] = SingleFlight()
        self._facts: SingleFlight[tuple[str, str, str], ImageFacts] = SingleFlight()
        self._platform_lookups: SingleFlight[LookupKey, ImagePlatforms] = SingleFlight()
        self._offers: SingleFlight[str, Offer] = SingleFlight()
        self._claimed: SingleFlight[tuple[str, str | None, str], tuple[str, tuple[str, ...]] | str] = (
            SingleFlight()
        )
        self.bases = KnownBases()
        """Which chain of layers is which image: bases for the images resolved after them."""
        self._recent: dict[tuple[str, int, str], _Warm] = {}
        """`_cached_platforms`'s recent answers, by image, platforms asked (by identity) and mode."""

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts:
        """Facts for `image` (a reference, `oci:PATH` or `docker-archive:PATH`).

        When `budget` seconds pass first, DeadlineExceeded is raised and the lookup goes on in the
        background, so that asking again later is answered from the cache.
        """
        key: LookupKey = (image, str(platform or DEFAULT_PLATFORM), mode)
        failure = self.cache.failures.get(key)
        if failure is not None:
            raise failure
        cached = self._cached(key, count_misses=True)
        if cached is not None:
            return cached
        self._raise_host_failure(image, key)
        # A timeout scope, no task of its own (as `asyncio.wait_for` makes on Python 3.11): a task that
        # would end holding the lookup's error is one kopf raises at shutdown as the process's failure,
        # however well the caller handled that error (see `singleflight`).
        try:
            async with asyncio.timeout(budget):
                return await self._lookups.do(
                    key, lambda: self._lookup(image, platform or DEFAULT_PLATFORM, mode)
                )
        except TimeoutError:
            raise DeadlineExceeded(f"{image}: not resolved within {budget:g} s") from None

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        """The facts from the cache tiers alone, without a task or a wait (None: ask `resolve`). Counted
        as `resolve` counts a warm answer, so the metrics read the same either way."""
        key: LookupKey = (image, str(platform or DEFAULT_PLATFORM), mode)
        if self.cache.failures.peek(key) is not None:
            return None
        try:
            facts = self._cached(key, count_misses=False)
        except DistroguardError:  # a bad reference: `resolve` says what is wrong with it
            return None
        if facts is not None:
            self.cache.failures.count(False)
        return facts

    async def resolve_platforms(
        self,
        image: str,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
        gate: Gate | None = None,
    ) -> ImagePlatforms:
        """Facts for each of `platforms` that `image` offers (None: every platform it offers, at most
        `MAX_PLATFORMS`); attestations are never judged. A single-platform image is judged on its one
        platform whatever is asked. Each platform's facts are cached under its own manifest's digest and the
        index under its digest, so a platform asked later reads its own manifest, config and layers only.

        `budget` as for `resolve`. A platform wanted but not offered is no error: `offered` says what there
        is, and the caller decides. `gate`: the asking namespace's share of cold lookups (`fairness`), counted
        only when this call starts one."""
        wanted: Wanted = None if platforms is None else tuple(platforms)
        key: LookupKey = (image, platforms_text(wanted), mode)
        failure = self.cache.failures.get(key)
        if failure is not None:
            raise failure
        cached = self._cached_platforms(image, wanted, mode, count_misses=True)
        if cached is not None:
            return cached
        self._raise_host_failure(image, key)

        def work() -> Awaitable[ImagePlatforms]:
            return self._lookup_platforms(image, wanted, mode)

        if gate is not None and key not in self._platform_lookups:
            gate.take()
            start = work

            def work() -> Awaitable[ImagePlatforms]:
                return gate.run(start)

        try:
            async with asyncio.timeout(budget):
                return await self._platform_lookups.do(key, work)
        except TimeoutError:
            raise DeadlineExceeded(f"{image}: not resolved within {budget:g} s") from None

    def cached_platforms(
        self, image: str, platforms: Sequence[Platform] | None = None, mode: ScanMode = "fast"
    ) -> ImagePlatforms | None:
        """`resolve_platforms`'s answer from the cache tiers alone, without a task or a wait (None: ask
        `resolve_platforms`); counted as `cached` counts."""
        wanted: Wanted = None if platforms is None else tuple(platforms)
        warm = self._warm(image, wanted, mode, failures=True)
        if warm is not None:
            return warm
        if self.cache.failures.peek((image, platforms_text(wanted), mode)) is not None:
            return None
        try:
            found = self._cached_platforms(image, wanted, mode, count_misses=False)
        except DistroguardError:
            return None
        if found is not None:
            self.cache.failures.count(False)
        return found

    def known_digest(self, image: str) -> str | None:
        """The digest `image` resolves to as far as the cache knows (its own, or its tag's), uncounted."""
        if is_local_image(image):
            return None
        try:
            ref = _parse(image)
        except DistroguardError:
            return None
        return ref.digest or self.cache.tags.peek(str(ref))

    def known_offer(self, image: str) -> Offer | None:
        """What `image` offers as far as the cache knows, uncounted."""
        digest = self.known_digest(image)
        return None if digest is None else self.cache.offers.peek(digest)

    def remember(
        self,
        facts: Sequence[ImageFacts],
        references: Sequence[tuple[str, str | None, float]],
        offer: Offer | None = None,
    ) -> int:
        """Take an image's facts learnt elsewhere (an ImageFacts object: one per platform judged, all of
        one digest) into the cache: each under the image's digest and its platform's own manifest digest,
        `offer` (what the image offers) under its digest, so that `resolve_platforms` is answered
        too; and for each (reference, the digest it resolved to, seconds since) under that digest, with the
        tag trusted for what is left of its TTL; and each platform's layer chain, as a known base. Returns
        how many references were taken."""
        digest = facts[0].digest if facts else None
        if digest is None:
            return 0
        targets = {digest}
        taken = 0
        for image, resolved, age in references:
            try:
                ref = _parse(image)
            except DistroguardError:
                continue
            target = ref.digest or resolved
            if target is None:
                continue
            targets.add(target)
            if ref.digest is not None or self.cache.remember_tag(str(ref), target, age):
                taken += 1
        for item in facts:
            if item.chain is not None:  # the inventory teaches which layers are which image: a base
                self.bases.learn_key(item.chain, item.reference, digest)
            if item.manifest_digest is not None:
                self.cache.facts.put((item.manifest_digest, item.platform, item.mode), item)
            for target in targets:
                self.cache.facts.put((target, item.platform, item.mode), item)
        if offer is not None:
            self.cache.offers.put(offer.digest, offer)
        return taken

    def _all_flights(self) -> tuple[SingleFlight[Any, Any], ...]:
        """Every kind of shared lookup, outermost first (so an outer one's cancellation comes first)."""
        return (self._lookups, self._platform_lookups, self._tags, self._offers, self._facts, self._claimed)

    async def drain(self) -> None:
        """Wait for background lookups to finish."""
        for flights in self._all_flights():
            await flights.drain()

    async def cancel(self) -> None:
        """Cancel every lookup under way, in the background or awaited, and wait until they have ended."""
        for flights in self._all_flights():
            await flights.cancel()

    def _cached(self, key: LookupKey, *, count_misses: bool) -> ImageFacts | None:
        """The answer from the cache tiers alone (tag → digest → facts), without starting any work (the
        hot path). A hit is counted in each tier it read; a miss only when `count_misses` (`resolve`, which
        goes on to the registry: `cached` leaves that to the `resolve` its caller makes next)."""
        image, platform, mode = key
        if is_local_image(image):
            return None
        ref = _parse(image)
        digest = ref.digest or self.cache.tags.peek(str(ref))
        facts = None if digest is None else self.cache.facts.peek((digest, platform, mode))
        if facts is not None or count_misses:
            if ref.digest is None:
                self.cache.tags.count(digest is not None)
            if digest is not None:
                self.cache.facts.count(facts is not None)
        return None if facts is None else _as_asked(facts, image)

    def _warm(
        self, image: str, wanted: Wanted, mode: ScanMode, *, failures: bool = False
    ) -> ImagePlatforms | None:
        """The answer `_cached_platforms` gave last for these, when the tiers would give it again (counted
        as the tiers would count it, with the failure tier's miss when `failures`); the warm path's walk
        through them is made once per change."""
        recent = self._recent.get((image, id(wanted), mode))
        if (
            recent is None
            or recent.wanted is not wanted
            or recent.generation != self.cache.generation.value
            or (recent.end is not None and self.cache.now() >= recent.end)
        ):
            return None
        self.cache.count_warm(recent.end is not None, failures)
        return recent.answer

    def _cached_platforms(
        self, image: str, wanted: Wanted, mode: ScanMode, *, count_misses: bool
    ) -> ImagePlatforms | None:
        """As `_cached`, for every platform judged: all of them must be cached."""
        if is_local_image(image):
            return None
        warm = self._warm(image, wanted, mode)
        if warm is not None:
            return warm
        ref = _parse(image)
        tag = None if ref.digest else str(ref)
        digest = ref.digest if tag is None else self.cache.tags.peek(tag)
        offer = None if digest is None else self.cache.offers.peek(digest)
        found: list[ImageFacts] | None = None
        if offer is not None:
            found = []
            for entry, platform in offer.keyed(wanted):
                facts = self.cache.facts.peek((entry.digest, platform, mode))
                if facts is None:
                    found = None
                    break
                found.append(facts)
        if found is not None or count_misses:
            if tag is not None:
                self.cache.tags.count(digest is not None)
            if digest is not None:
                self.cache.facts.count(found is not None)
        if found is None or offer is None or digest is None:
            return None
        answer = ImagePlatforms(
            offer.platforms, tuple(_as_asked(f, image, digest) for f in found), single=offer.single
        )
        end = None if tag is None else self.cache.tag_end(tag)
        if tag is None or end is not None:  # a tag whose end is not known is walked again
            if len(self._recent) >= _RECENT_KEPT:
                self._recent.clear()
            self._recent[(image, id(wanted), mode)] = _Warm(wanted, answer, self.cache.generation.value, end)
        return answer

    async def _lookup_platforms(self, image: str, wanted: Wanted, mode: ScanMode) -> ImagePlatforms:
        """The whole multi-platform lookup, one shared task (as `_lookup`)."""
        deadline = asyncio.get_running_loop().time() + self.settings.lookup_timeout
        try:
            if is_local_image(image):
                return await self._local_platforms(image, wanted, mode)
            source = await self._registry_source(_parse(image), deadline)
            digest = source.ref.digest or ""
            try:
                likely = wanted[0] if wanted else DEFAULT_PLATFORM
                offer = self.cache.offers.peek(digest) or await self._offers.do(
                    digest, lambda: self._offer(source, likely)
                )
                outcomes = await asyncio.gather(
                    *(self._entry_facts(source, image, offer, e, mode) for e in _chosen(offer, wanted)),
                    return_exceptions=True,
                )
            finally:
                await source.aclose()
            facts: list[ImageFacts] = []
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
                facts.append(_as_asked(outcome, image, digest))
        except DistroguardError as exc:
            self.cache.failures.put((image, platforms_text(wanted), mode), exc)
            self._remember_host_failure(image, exc)
            raise
        return ImagePlatforms(offer.platforms, tuple(facts), single=offer.single)

    async def _offer(self, source: RegistrySource, likely: Platform) -> Offer:
        """What the image offers. A lone manifest's config is read for its platform: its bottom layer goes
        out beside it, and the base it claims is read for the `likely` platform (a wrong guess costs a read,
        never a wrong answer: the read is kept under the platform it was for)."""

        def ahead(manifest: ImageManifest) -> None:
            source.prefetch(manifest)
            claim = claimed_base(manifest.annotations, {})
            if claim is not None:
                key = (claim.name, claim.digest, str(likely))
                if self.cache.claimed.peek(key) is None:
                    deadline = source.deadline
                    self._claimed.start(key, lambda: self._read_base_layers(key, claim, likely, deadline))

        media_type, body, digest = await source.read_manifest()
        what = source.description
        offer = await read_offer(
            media_type, body, digest, read_config=source.read_config, what=what, on_manifest=ahead
        )
        self.cache.offers.put(digest, offer)
        return offer

    async def _entry_facts(
        self, source: RegistrySource, image: str, offer: Offer, entry: Descriptor, mode: ScanMode
    ) -> ImageFacts:
        """One platform's facts: cached under its manifest's digest; computed on a source of its own, so
        that its `bytes_fetched` counts its own bytes (a lone manifest's reuses the config already read)."""
        platform = entry.platform or DEFAULT_PLATFORM
        key = (entry.digest, _platform_key(entry), mode)

        async def compute() -> ImageFacts:
            if offer.manifest is not None:
                resolved = ResolvedImage(offer.digest, entry.digest, offer.manifest, platform)
                return await self._compute(source, image, platform, mode, resolved, key=key)
            own = RegistrySource(self.client, source.ref, deadline=source.deadline, ahead=self._ahead)
            what = f"{source.description} ({platform})"
            media_type, body, _ = await self.client.get_manifest(
                own.ref, entry.digest, deadline=own.deadline, meter=own.meter
            )
            if len(body) != entry.size:
                raise SourceError(
                    f"{what}: manifest {entry.digest} has {len(body)} bytes, the index says {entry.size}"
                )
            manifest = parse_manifest(media_type or entry.media_type, body, what)
            if isinstance(manifest, ImageIndex):
                raise SourceError(f"{what}: the entry {entry.digest} is an index, not a platform's image")
            resolved = ResolvedImage(offer.digest, entry.digest, manifest, platform)
            return await self._compute(own, image, platform, mode, resolved, key=key)

        return self.cache.facts.peek(key) or await self._facts.do(key, compute)

    async def _local_platforms(self, image: str, wanted: Wanted, mode: ScanMode) -> ImagePlatforms:
        """A local image (OCI layout, docker archive): a platform no image runs on is asked first, and its
        refusal lists what the image offers; each wanted one is then read."""
        try:
            probe = await self._lookup(image, _PROBE, mode)
        except PlatformNotFound as exc:
            offered = tuple(p for p in exc.available if p != "unspecified")[:MAX_PLATFORMS]
        else:  # an image that declares no platform at all: judged on the one it has
            return ImagePlatforms((probe.platform,), (probe,), single=True)
        chosen = [
            text for text in offered if wanted is None or any(w.matches(Platform.parse(text)) for w in wanted)
        ]
        if not chosen and len(offered) == 1:  # one platform: judged on it, as a single-platform image
            chosen = list(offered)
        facts = [await self._lookup(image, Platform.parse(text), mode) for text in chosen]
        return ImagePlatforms(offered, tuple(facts), single=len(offered) == 1)

    async def _lookup(self, image: str, platform: Platform, mode: ScanMode) -> ImageFacts:
        """The whole lookup, run as one shared task so that it completes even when callers give up."""
        deadline = asyncio.get_running_loop().time() + self.settings.lookup_timeout
        try:
            resolved: ResolvedImage | None = None
            if is_local_image(image):
                source = open_source(image, client=self.client)
                resolved = await source.resolve(platform)
                digest = resolved.digest
            else:
                source = await self._registry_source(_parse(image), deadline)
                digest = source.ref.digest or ""
            key = (digest, str(platform), mode)
            try:
                facts = self.cache.facts.peek(key) or await self._facts.do(
                    key, lambda: self._compute(source, image, platform, mode, resolved)
                )
            finally:
                if isinstance(source, RegistrySource):
                    await source.aclose()
        except DistroguardError as exc:
            self.cache.failures.put((image, str(platform), mode), exc)
            self._remember_host_failure(image, exc)
            raise
        return _as_asked(facts, image)

    async def _registry_source(self, ref: ImageRef, deadline: float) -> RegistrySource:
        """The source of `ref`, its digest known (the tag's manifest, when it was read to learn it, handed
        over), reading its bottom layer beside its config when that may be needed."""
        fetched: Fetched | None = None
        digest = ref.digest
        if digest is None:
            digest, fetched = await self._tag_digest(ref, deadline)
        return RegistrySource(
            self.client, ref.with_digest(digest), deadline=deadline, manifest=fetched, ahead=self._ahead
        )

    def _ahead(self, manifest: ImageManifest) -> Descriptor | None:
        """The blob worth reading beside a cold image's config: its bottom layer, which every scan reads
        first, unless a layer of that digest was read before (the base tier most likely answers from the
        config's diff_ids then, and no layer need be read at all)."""
        if not manifest.layers or len(manifest.layers) > self.settings.max_layers:
            return None
        bottom = manifest.layers[0]
        return None if self.cache.bottom_read(bottom.digest) else bottom

    def _host(self, image: str) -> str | None:
        """The registry host a lookup of `image` connects to (its mirror's when mirrored); None for a local
        image or a bad reference."""
        if is_local_image(image):
            return None
        try:
            return self.client.route(_parse(image)).registry
        except DistroguardError:
            return None

    def _remember_host_failure(self, image: str, error: DistroguardError) -> None:
        whole_host = isinstance(error, HOST_FAILURES) and getattr(error, "whole_host", True)
        host = self._host(image) if whole_host else None
        if host is not None and isinstance(error, RegistryError):
            # A message of its own: the failed reference may be another namespace's.
            self.cache.hosts.put(
                host,
                type(error)(
                    error.registry,
                    f"a lookup on this registry failed ({error.reason}) less than "
                    f"{self.cache.settings.failure_ttl:g} s ago; it is asked again after that",
                ),
            )

    def _raise_host_failure(self, image: str, key: LookupKey) -> None:
        """Raise the recent failure of `image`'s registry host, when there is one (and remember it for the
        image too)."""
        if not len(self.cache.hosts):
            return
        host = self._host(image)
        failure = None if host is None else self.cache.hosts.get(host)
        if failure is not None:
            self.cache.failures.put(key, failure)
            raise failure

    async def _tag_digest(self, ref: ImageRef, deadline: float) -> tuple[str, Fetched | None]:
        """The digest `ref`'s tag names now, with the manifest read to learn it (None when it was not).

        A tag never seen is asked by GET: its manifest is what the lookup reads next, and the digest is that
        of the bytes received (checked against the registry's Docker-Content-Digest). A tag seen before, its
        TTL passed, is asked by HEAD: it most often still names a digest whose facts are cached, and a HEAD
        reads no body (nor counts as a pull where a registry limits manifest GETs)."""
        key = str(ref)
        cached = self.cache.tags.peek(key)
        if cached is not None:
            return cached, None

        async def fetch() -> tuple[str, Fetched | None]:
            fetched: Fetched | None = None
            if self.cache.seen_tag(key):
                digest = await self.client.head_digest(ref, deadline=deadline)
            else:
                media_type, body, digest = await self.client.get_manifest(
                    ref, ref.tag or "latest", deadline=deadline
                )
                fetched = (media_type, body)
            self.cache.put_tag(key, digest)
            return digest, fetched

        return await self._tags.do(key, fetch)

    async def _compute(
        self,
        source: ImageSource,
        image: str,
        platform: Platform,
        mode: ScanMode,
        resolved: ResolvedImage | None = None,
        *,
        key: tuple[str, str, str] | None = None,
    ) -> ImageFacts:
        """Read and scan the image; `resolved` when the caller already has its manifest; `key`: where the
        facts are cached (default: under the digest of what the reference names, and `platform`).

        Requests that do not wait for each other go out together: the bottom layer beside the config (when
        the source reads ahead), the claimed base's manifest and config beside the layers."""
        try:
            return await self._scan(source, image, platform, mode, resolved, key)
        finally:
            if isinstance(source, RegistrySource):
                await source.aclose()

    async def _scan(
        self,
        source: ImageSource,
        image: str,
        platform: Platform,
        mode: ScanMode,
        resolved: ResolvedImage | None,
        key: tuple[str, str, str] | None,
    ) -> ImageFacts:
        resolved = resolved or await source.resolve(platform)
        manifest = resolved.manifest
        if len(manifest.layers) > self.settings.max_layers:
            raise ScanLimitExceeded(
                "max_layers",
                self.settings.max_layers,
                f"{source.description}: {len(manifest.layers)} layers",
            )
        if isinstance(source, RegistrySource):
            source.prefetch(manifest)
        # The base the manifest claims is read beside the config and the layers (one the config's labels
        # claim, once the config is in).
        claim = claimed_base(manifest.annotations, {})
        reading = None if claim is None else self._read_base(source, claim, resolved.platform)
        try:
            config = parse_config(
                await source.read_blob(manifest.config, max_bytes=self.settings.max_config_bytes)
            )
            if config.diff_ids and len(config.diff_ids) != len(manifest.layers):
                raise SourceError(
                    f"{source.description}: config lists {len(config.diff_ids)} layers "
                    f"but the manifest has {len(manifest.layers)}"
                )
            announced = bool(detect_runtimes(config.env, None)[0])
            # A runtime the config announces needs no layer above those that decide OS and libc.
            layer_mode: ScanMode = "fast" if mode == "runtimes" and announced else mode
            programs = program_paths(config.entrypoint, config.cmd, config.env, config.working_dir)
            if claim is None:
                claim = claimed_base({}, config.labels)
                reading = None if claim is None else self._read_base(source, claim, resolved.platform)
            layer_facts, seen, bounded = await self._layer_facts(
                source, manifest.layers, config.diff_ids, layer_mode, programs
            )
        except BaseException:
            if reading is not None:
                reading.cancel()
                await asyncio.wait([reading])
            raise
        claimed = None
        if claim is not None and reading is not None:
            claimed = _judged(claim, (await reading).unpack(), config.diff_ids)
        runtimes, evidence = with_config_runtimes(layer_facts, config.env)
        note = _scan_note(mode, layer_mode, layer_facts.layers_read, len(manifest.layers), seen, bounded)
        base = self._base(claimed, resolved, config, image)
        facts = ImageFacts(
            base=base,
            chain=chain_key(config.diff_ids) if config.diff_ids else None,
            reference=image,
            digest=resolved.digest,
            platform=str(resolved.platform),
            manifest_digest=resolved.manifest_digest,
            os=layer_facts.os,
            libc=layer_facts.libc,
            runtimes=runtimes,
            evidence=(*evidence, Evidence(fact="scan", source="scan", detail=note)),
            bytes_fetched=source.meter.total,
            image_size=manifest.config.size + sum(layer.size for layer in manifest.layers),
            mode=mode,
        )
        self.cache.facts.put(key or (resolved.digest, str(platform), mode), facts)
        return facts

    def _base(
        self, claimed: BaseImage | None, resolved: ResolvedImage, config: ImageConfig, image: str
    ) -> BaseImage | None:
        """The image this one is built on (`resolver.bases`): the base it claims, verified (`claimed`), else
        a known chain its layers start with; and the image learnt as a base for others."""
        diff_ids = config.diff_ids
        base = claimed
        if base is None or base.verified is not True:
            base = self.bases.base_of(diff_ids) or base
        if not is_local_image(image):
            self.bases.learn(diff_ids, image, resolved.digest)
        return base

    def _read_base(
        self, source: ImageSource, claim: Claim, platform: Platform
    ) -> asyncio.Future[Outcome[tuple[str, tuple[str, ...]] | str]]:
        """A task reading the claimed base (see `_base_layers`), its error kept in its outcome."""
        return asyncio.ensure_future(settle(self._base_layers(source, claim, platform)))

    async def _base_layers(
        self, source: ImageSource, claim: Claim, platform: Platform
    ) -> tuple[str, tuple[str, ...]] | str:
        """The claimed base's digest and diff_ids (its manifest and config for the same platform), or why they
        could not be read. Cached for the tag TTL and read once however many images claim it at once: on a
        seen base, the claim costs no round trip."""
        if not isinstance(source, RegistrySource):
            return "a local image's base is not fetched"
        key = (claim.name, claim.digest, str(platform))
        known = self.cache.claimed.peek(key)  # uncounted: not one of the metrics' tiers
        if known is not None:
            return known
        deadline = source.deadline
        return await self._claimed.do(key, lambda: self._read_base_layers(key, claim, platform, deadline))

    async def _read_base_layers(
        self,
        key: tuple[str, str | None, str],
        claim: Claim,
        platform: Platform,
        deadline: float | None,
    ) -> tuple[str, tuple[str, ...]] | str:
        try:
            ref = ImageRef.parse(claim.name)
            if claim.digest is not None:
                ref = ref.with_digest(claim.digest)
            base_source = RegistrySource(self.client, ref, deadline=deadline)
            base = await base_source.resolve(platform)
            base_config = parse_config(
                await base_source.read_blob(base.manifest.config, max_bytes=self.settings.max_config_bytes)
            )
        except DistroguardError as exc:
            return str(exc)
        read = (base.digest, base_config.diff_ids)
        self.cache.claimed.put(key, read)
        return read

    async def _layer_facts(
        self,
        source: ImageSource,
        layers: tuple[Descriptor, ...],
        diff_ids: tuple[str, ...],
        mode: ScanMode,
        programs: tuple[str, ...] = (),
    ) -> tuple[LayerFacts, bool, bool]:
        """Facts from the layers; whether they came from the base tier (a prefix of this chain was seen
        before) rather than from reading; whether `max_runtime_bytes` stopped a `runtimes` search.

        Layers are keyed by their diff_id chain (uncompressed digests, checked while reading), so an image
        built on an already-seen base answers with zero layer bytes, however its layers were compressed. In
        `runtimes` mode a shorter prefix counts only when its files showed a runtime: above it, this image
        may have one the base has not.
        """
        chain = diff_ids if len(diff_ids) == len(layers) else ()
        if chain:
            depths = range(1, len(chain) + 1) if mode != "thorough" else (len(chain),)
            hit = next(
                (
                    f
                    for f in (self.cache.bases.peek((chain[:d], mode)) for d in depths)
                    if f is not None
                    and (mode != "runtimes" or f.file_runtimes or f.layers_read == len(chain))
                ),
                None,
            )
            self.cache.bases.count(hit is not None)
            if hit is not None:
                return hit, True, False
        scan = ImageScan(self.settings.limits, programs=programs)
        past_decided = 0
        bounded = False
        for index, descriptor in enumerate(layers):
            if mode == "runtimes" and scan.layers_read and scan.decided():
                if scan.runtime_found():
                    break
                past_decided += descriptor.size
                if past_decided > self.settings.max_runtime_bytes:
                    bounded = True
                    break
            layer = scan.layer(descriptor.digest, chain[index] if chain else None)
            stream = source.open_blob(descriptor)
            try:
                async for chunk in stream:
                    layer.feed(chunk)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            layer.close()
            if mode == "fast" and scan.decided():
                break
        facts = scan.facts()
        if chain:
            self.cache.bases.put((chain[: scan.layers_read], mode), facts)
            self.cache.read_bottom(layers[0].digest)
        return facts, False, bounded
