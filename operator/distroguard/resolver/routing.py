"""Which resolver each image goes to, so that a namespace's pull secrets never serve another.

- One anonymous resolver, shared by every request: public images are resolved and cached once.
- One resolver per (namespace, fingerprint of its pull secrets), kept while in use and closed after
  `ttl` seconds idle. Its cache holds what those credentials could read, and nobody else asks it.

Images are routed one by one (`RoutedResolver`): those on a registry the credentials name go to the
credentialed resolver, the others to the anonymous one. "The registry" is where the lookup really goes:
for an image on a mirrored registry, the mirror's host, whose credentials the registry client sends
(`credentials_registry`); the in-cluster audit, the CLI audit and admission all decide it here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Protocol

from cachetools import TTLCache

from distroguard.errors import InvalidReference
from distroguard.model import ImageFacts, ImageRef, Platform, ScanMode
from distroguard.model.facts import ImagePlatforms
from distroguard.model.reference import is_local_image
from distroguard.registry.authflow import Schemes
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.registry.hosts import canonical_registry, mirrored
from distroguard.registry.meter import RegistryStats
from distroguard.resolver.cache import FactsCache
from distroguard.resolver.fairness import Gate
from distroguard.resolver.many import (
    Outcome,
    PlatformsOutcome,
    PlatformsSource,
    resolve_many,
    resolve_many_platforms,
)
from distroguard.resolver.resolver import Resolver, ResolverSettings

logger = logging.getLogger(__name__)

PoolKey = tuple[str, str]
"""(namespace, credentials fingerprint)."""
_NO_MIRRORS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PullCredentials:
    """The registry credentials of a workload's pull secrets (its own and its service account's)."""

    store: CredentialStore = field(default_factory=CredentialStore)
    fingerprint: str = ""
    """sha256 over the secrets used (names, types, data); "" without any."""


NO_CREDENTIALS = PullCredentials()


class CacheTracker(Protocol):
    """Reads resolvers' cache statistics; a short-lived resolver's cache is untracked when dropped."""

    def track_cache(self, cache: FactsCache) -> None: ...

    def untrack_cache(self, cache: FactsCache) -> None: ...


class _NoTracker:
    def track_cache(self, cache: FactsCache) -> None:
        return None

    def untrack_cache(self, cache: FactsCache) -> None:
        return None


def credentials_registry(image: str, mirrors: Mapping[str, str] = _NO_MIRRORS) -> str | None:
    """The registry whose credentials a lookup of `image` sends, as credentials are keyed: the image's own,
    or its mirror's host when its registry is mirrored (`mirrors`: source registry -> mirror). None for a
    local image or a bad reference (no credentials: the resolver reports what is wrong with it)."""
    if is_local_image(image):
        return None
    try:
        ref = ImageRef.parse(image)
    except InvalidReference:
        return None
    registry, _ = mirrored(ref.registry, ref.repository, mirrors)
    return canonical_registry(registry)


def uses_credentials(
    image: str, registries: Container[str], mirrors: Mapping[str, str] = _NO_MIRRORS
) -> bool:
    """Whether credentials for `registries` (canonical names, or a `CredentialStore`) are what a lookup of
    `image` needs: they name the registry it goes to (see `credentials_registry`)."""
    registry = credentials_registry(image, mirrors)
    return registry is not None and registry in registries


@dataclass(frozen=True, slots=True)
class RoutedResolver:
    """The resolver of one workload: credentialed for the registries its secrets name, anonymous else."""

    anonymous: Resolver
    own: Resolver | None = None
    """The resolver carrying the workload's credentials; None when it has none."""
    registries: frozenset[str] = frozenset()
    """The registries `own`'s credentials name (canonical)."""
    mirrors: Mapping[str, str] = field(default_factory=dict)
    """Source registry -> mirror: an image on a mirrored registry is fetched from the mirror, with the
    mirror host's credentials."""
    gate: Gate | None = None
    """The asking namespace's share of cold lookups (`fairness`); None: unlimited (the audit, the CLI)."""

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts:
        return await self.target(image).resolve(image, platform, mode, budget)

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        return self.target(image).cached(image, platform, mode)

    async def resolve_many(
        self,
        images: Iterable[str],
        *,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
        concurrency: int | None = None,
    ) -> dict[str, Outcome]:
        """Each distinct image's outcome, each through its own target (see `resolve_many`)."""
        lookups = {image: (image, self.target(image)) for image in images}
        return await resolve_many(
            lookups, platform=platform, mode=mode, budget=budget, concurrency=concurrency
        )

    async def resolve_platforms(
        self,
        image: str,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImagePlatforms:
        return await self.target(image).resolve_platforms(image, platforms, mode, budget, self.gate)

    def cached_platforms(
        self, image: str, platforms: Sequence[Platform] | None = None, mode: ScanMode = "fast"
    ) -> ImagePlatforms | None:
        return self.target(image).cached_platforms(image, platforms, mode)

    async def resolve_many_platforms(
        self,
        images: Iterable[str],
        *,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
        concurrency: int | None = None,
    ) -> dict[str, PlatformsOutcome]:
        """Each distinct image judged on each of `platforms` it offers (see `resolve_many_platforms`)."""
        asked = list(images)
        found: dict[str, PlatformsOutcome] = {}
        lookups: dict[str, tuple[str, PlatformsSource]] = {}
        for image in asked:
            # What the cache answers is taken here, without the general path's task machinery: a warm
            # review (nearly every review) never leaves this loop.
            if not lookups and image not in found:
                answer = self.target(image).cached_platforms(image, platforms, mode)
                if answer is not None:
                    found[image] = answer
                    continue
            if image not in found:
                lookups[image] = (image, self.target(image) if self.gate is None else self)
        if not lookups:
            return found
        found.update(
            await resolve_many_platforms(
                lookups, platforms=platforms, mode=mode, budget=budget, concurrency=concurrency
            )
        )
        return {image: found[image] for image in asked}

    def target(self, image: str) -> Resolver:
        """The resolver `image` goes to: the credentialed one when its credentials serve the image."""
        if self.own is not None and uses_credentials(image, self.registries, self.mirrors):
            return self.own
        return self.anonymous

    def is_private(self, image: str) -> bool:
        """Whether `image` is resolved with the workload's credentials (its facts are theirs alone)."""
        return self.target(image) is not self.anonymous


ClientFactory = Callable[[CredentialStore | None], RegistryClient]
"""The registry client of a credential store (None: anonymous)."""


class ResolverPool:
    def __init__(
        self,
        settings: RegistrySettings,
        *,
        ttl: float,
        maxsize: int = 256,
        resolver_settings: ResolverSettings | None = None,
        stats: RegistryStats | None = None,
        tracker: CacheTracker | None = None,
        client: ClientFactory | None = None,
    ) -> None:
        """`stats` is shared by every client of the pool (one set of registry counters for metrics);
        `tracker` is told of each resolver's cache as it comes and goes; `client` makes the registry client
        of a credential store (tests swap what is below it, e.g. the DNS resolver). The pool's own clients
        share what each registry's 401 taught about its authentication (`authflow.Schemes`)."""
        shared: Schemes = {}  # one for every client the pool makes
        self._client: ClientFactory = client or partial(RegistryClient, settings, stats=stats, schemes=shared)
        self._settings = settings
        self._resolver_settings = resolver_settings
        self._stats = stats
        self._tracker: CacheTracker = tracker or _NoTracker()
        self._entries: TTLCache[PoolKey, Resolver] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._retiring: set[asyncio.Task[None]] = set()
        self._anonymous: Resolver | None = None
        self._public: RoutedResolver | None = None
        self._retiring_resolvers: set[Resolver] = set()

    async def start(self) -> None:
        self._anonymous = await self._open(self._client(None))
        self._public = RoutedResolver(self._anonymous)

    @property
    def anonymous(self) -> Resolver:
        """The resolver of every image no credentials are needed for."""
        if self._anonymous is None:
            raise RuntimeError("ResolverPool.start() was not awaited")
        return self._anonymous

    @property
    def public(self) -> RoutedResolver:
        """Routing for a workload without credentials: everything to the anonymous resolver."""
        if self._public is None:
            raise RuntimeError("ResolverPool.start() was not awaited")
        return self._public

    async def resolver(self, namespace: str, credentials: PullCredentials) -> RoutedResolver:
        """The routing for a workload of `namespace` with these credentials."""
        if not len(credentials.store):
            return self.public
        key = (namespace, credentials.fingerprint)
        for _, expired in self._entries.expire():
            self._retire(expired)
        own = self._entries.get(key)
        if own is None:
            opened = await self._open(self._client(credentials.store))
            own = self._entries.get(key)  # another request may have opened one meanwhile: keep one
            if own is None:
                own = opened
                if len(self._entries) >= self._entries.maxsize:
                    _, evicted = self._entries.popitem()
                    self._retire(evicted)
            else:
                self._retire(opened)
        self._entries[key] = own  # set again: an entry in use does not expire
        return RoutedResolver(
            self.anonymous, own, frozenset(credentials.store.registries), self._settings.registry_mirrors
        )

    async def close(self) -> None:
        """Close every resolver once its background lookups are over."""
        for resolver in self._take_all():
            self._retire(resolver)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def abort(self) -> None:
        """Stop now (the process is stopping): cancel every lookup under way and close every client, which
        cancels what the HTTP client runs of its own (its DNS lookups); return once all of it has ended.
        kopf, stopping, takes each task started since its start that is still pending, waits a little and
        raises what the task ends with: a lookup failing in that moment must leave it nothing."""
        resolvers = self._take_all()
        for resolver in resolvers:
            self._tracker.untrack_cache(resolver.cache)
        # Those retiring too: their retirement waits for their lookups, which end at once when cancelled.
        await asyncio.gather(*(r.cancel() for r in [*resolvers, *self._retiring_resolvers]))
        closed = await asyncio.gather(*(r.client.aclose() for r in resolvers), return_exceptions=True)
        for error in closed:
            if isinstance(error, Exception):
                logger.warning("closing a registry client failed: %s", error)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    def _take_all(self) -> list[Resolver]:
        resolvers = [*self._entries.values(), *([self._anonymous] if self._anonymous else [])]
        self._entries.clear()
        self._anonymous = self._public = None
        return resolvers

    async def _open(self, client: RegistryClient) -> Resolver:
        await client.__aenter__()
        resolver = Resolver(client, self._resolver_settings)
        self._tracker.track_cache(resolver.cache)
        return resolver

    def _retire(self, resolver: Resolver) -> None:
        """Close a resolver's client once its background lookups are over."""

        self._tracker.untrack_cache(resolver.cache)

        async def retire() -> None:
            try:
                await resolver.drain()
                await resolver.client.aclose()
            except Exception:  # closing is best effort: the process goes on either way
                logger.warning("closing a registry client failed", exc_info=True)
            finally:
                self._retiring_resolvers.discard(resolver)

        self._retiring_resolvers.add(resolver)

        task = asyncio.ensure_future(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
