"""`resolve_many`: many images at once, each with the resolver chosen for it (see `routing`).

What admission, the in-cluster audit, the CLI audit and the image commands share: the cache answers first
(an image it knows makes no task and no wait: the warm path), the rest are looked up concurrently, at most
`concurrency` at a time when bounded, each within an optional `budget`; every lookup ends in an outcome, the
facts or the `DistroguardError` that says why there are none, so one bad image never hides the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Protocol, TypeVar

from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.model.facts import ImagePlatforms

Outcome = ImageFacts | DistroguardError
"""What one lookup ends in: the image's facts, or why there are none."""
PlatformsOutcome = ImagePlatforms | DistroguardError
"""What one multi-platform lookup ends in: the facts of each platform judged, or why there are none."""

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
S = TypeVar("S")


class FactsSource(Protocol):
    """What `resolve_many` needs of a resolver (`Resolver` and `RoutedResolver` fit)."""

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts: ...

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        """The facts if the cache has them now, else None (no task, no wait)."""


class PlatformsSource(Protocol):
    """What `resolve_many_platforms` needs of a resolver (`Resolver` and `RoutedResolver` fit)."""

    async def resolve_platforms(
        self,
        image: str,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImagePlatforms: ...

    def cached_platforms(
        self, image: str, platforms: Sequence[Platform] | None = None, mode: ScanMode = "fast"
    ) -> ImagePlatforms | None: ...


async def resolve_many(
    lookups: Mapping[K, tuple[str, FactsSource]],
    *,
    platform: Platform | None = None,
    mode: ScanMode = "fast",
    budget: float | None = None,
    concurrency: int | None = None,
    on_done: Callable[[K, Outcome], None] | None = None,
) -> dict[K, Outcome]:
    """The outcome of each lookup (key -> (image, the resolver to ask)), in the order of `lookups`.

    `budget`: seconds each lookup may wait (None: the resolver's own bound); one that runs out ends in
    `DeadlineExceeded` and goes on in the resolver's background, so asking again later finds it cached.
    `concurrency`: lookups under way at once (None: all). `on_done` is called as each one ends, the cached
    ones first. An error that is not a `DistroguardError` (a bug) propagates.
    """

    def cached(resolver: FactsSource, image: str) -> ImageFacts | None:
        return resolver.cached(image, platform, mode)

    def resolve(resolver: FactsSource, image: str) -> Awaitable[ImageFacts]:
        return resolver.resolve(image, platform, mode, budget)

    return await _many(lookups, cached, resolve, concurrency, on_done)


async def resolve_many_platforms(
    lookups: Mapping[K, tuple[str, PlatformsSource]],
    *,
    platforms: Sequence[Platform] | None = None,
    mode: ScanMode = "fast",
    budget: float | None = None,
    concurrency: int | None = None,
    on_done: Callable[[K, PlatformsOutcome], None] | None = None,
    each: Mapping[K, Sequence[Platform] | None] | None = None,
) -> dict[K, PlatformsOutcome]:
    """As `resolve_many`, each image judged on each of `platforms` it offers (None: all it offers; see
    `Resolver.resolve_platforms`); `each`: the platforms of some lookups, in place of `platforms`."""
    if each:
        by_key = {
            key: (image, _Pinned(resolver, each.get(key, platforms)))
            for key, (image, resolver) in lookups.items()
        }
        return await resolve_many_platforms(
            by_key, mode=mode, budget=budget, concurrency=concurrency, on_done=on_done
        )

    def cached(resolver: PlatformsSource, image: str) -> ImagePlatforms | None:
        return resolver.cached_platforms(image, platforms, mode)

    def resolve(resolver: PlatformsSource, image: str) -> Awaitable[ImagePlatforms]:
        return resolver.resolve_platforms(image, platforms, mode, budget)

    return await _many(lookups, cached, resolve, concurrency, on_done)


class _Pinned:
    """A resolver asked for given platforms whatever its caller asks (one lookup's own platforms)."""

    def __init__(self, resolver: PlatformsSource, platforms: Sequence[Platform] | None) -> None:
        self._resolver = resolver
        self._platforms = platforms

    async def resolve_platforms(
        self,
        image: str,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImagePlatforms:
        return await self._resolver.resolve_platforms(image, self._platforms, mode, budget)

    def cached_platforms(
        self, image: str, platforms: Sequence[Platform] | None = None, mode: ScanMode = "fast"
    ) -> ImagePlatforms | None:
        return self._resolver.cached_platforms(image, self._platforms, mode)


async def _many(
    lookups: Mapping[K, tuple[str, S]],
    cached: Callable[[S, str], T | None],
    resolve: Callable[[S, str], Awaitable[T]],
    concurrency: int | None,
    on_done: Callable[[K, T | DistroguardError], None] | None,
) -> dict[K, T | DistroguardError]:
    """`resolve_many`'s work for either kind of lookup: `cached(resolver, image)` first, then
    `resolve(resolver, image)` for what it could not answer."""
    outcomes: dict[K, T | DistroguardError] = {}
    missing: list[K] = []
    for key, (image, resolver) in lookups.items():
        found = cached(resolver, image)
        if found is None:
            missing.append(key)
            continue
        outcomes[key] = found
        if on_done is not None:
            on_done(key, found)
    if missing:  # a task per image only for what the cache cannot answer at once
        limit = asyncio.Semaphore(max(1, len(missing) if concurrency is None else concurrency))

        async def one(key: K) -> None:
            image, resolver = lookups[key]
            async with limit:
                outcome: T | DistroguardError
                try:
                    outcome = await resolve(resolver, image)
                except DistroguardError as exc:
                    outcome = exc
            outcomes[key] = outcome
            if on_done is not None:
                on_done(key, outcome)

        await asyncio.gather(*(one(key) for key in missing))
    return {key: outcomes[key] for key in lookups}
