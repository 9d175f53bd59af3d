"""Resolvers by whose credentials they carry, so that a namespace's pull secrets never serve another.

- One anonymous resolver, shared by every request: public images are resolved and cached once.
- One resolver per (namespace, fingerprint of its pull secrets), kept while in use and closed after
  `ttl` seconds idle. Its cache holds what those credentials could read, and nobody else asks it.

A request's images are routed per image: those on a registry its credentials name go to its own resolver,
the others to the anonymous one (`RoutedResolver`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from cachetools import TTLCache

from distroguard.errors import InvalidReference
from distroguard.model import ImageFacts, ImageRef, Platform, ScanMode
from distroguard.operator.observer import CacheTracker, NoObserver
from distroguard.operator.pullsecrets import PullCredentials
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.hosts import canonical_registry
from distroguard.registry.meter import RegistryStats
from distroguard.resolver import Resolver, ResolverSettings

logger = logging.getLogger(__name__)

PoolKey = tuple[str, str]
"""(namespace, credentials fingerprint)."""


@dataclass(frozen=True, slots=True)
class RoutedResolver:
    """The resolver of one request: credentialed for the registries its secrets name, anonymous else."""

    own: Resolver
    registries: frozenset[str]
    anonymous: Resolver
    mirrors: Mapping[str, str] = field(default_factory=dict)
    """Source registry -> mirror: an image on a mirrored registry is fetched from the mirror, with the
    mirror host's credentials."""

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

    def target(self, image: str) -> Resolver:
        """The resolver `image` goes to: the credentialed one when its registry is named by them."""
        try:
            registry = canonical_registry(ImageRef.parse(image).registry)
        except InvalidReference:
            registry = ""  # the anonymous resolver raises the same error, naming the image
        mirror = self.mirrors.get(registry)
        if mirror is not None:
            registry = canonical_registry(mirror)  # its host: whose credentials are sent
        return self.own if registry in self.registries else self.anonymous


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
    ) -> None:
        """`stats` is shared by every client of the pool (one set of registry counters for metrics);
        `tracker` is told of each resolver's cache as it comes and goes."""
        self._settings = settings
        self._resolver_settings = resolver_settings
        self._stats = stats
        self._tracker: CacheTracker = tracker or NoObserver()
        self._entries: TTLCache[PoolKey, Resolver] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._retiring: set[asyncio.Task[None]] = set()
        self._anonymous: Resolver | None = None

    async def start(self) -> None:
        self._anonymous = await self._open(RegistryClient(self._settings, stats=self._stats))

    @property
    def anonymous(self) -> Resolver:
        if self._anonymous is None:
            raise RuntimeError("ResolverPool.start() was not awaited")
        return self._anonymous

    async def resolver(self, namespace: str, credentials: PullCredentials) -> Resolver | RoutedResolver:
        if not len(credentials.store):
            return self.anonymous
        key = (namespace, credentials.fingerprint)
        for _, expired in self._entries.expire():
            self._retire(expired)
        own = self._entries.get(key)
        if own is None:
            opened = await self._open(RegistryClient(self._settings, credentials.store, stats=self._stats))
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
            own, frozenset(credentials.store.registries), self.anonymous, self._settings.registry_mirrors
        )

    async def close(self) -> None:
        resolvers = [*self._entries.values(), *([self._anonymous] if self._anonymous else [])]
        self._entries.clear()
        self._anonymous = None
        for resolver in resolvers:
            self._retire(resolver)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

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

        task = asyncio.ensure_future(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
