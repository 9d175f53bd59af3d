"""`resolve_many`: many images at once, each with the resolver chosen for it (see `routing`).

What admission, the in-cluster audit, the CLI audit and the image commands share: the cache answers first
(an image it knows makes no task and no wait: the warm path), the rest are looked up concurrently, at most
`concurrency` at a time when bounded, each within an optional `budget`; every lookup ends in an outcome, the
facts or the `DistroguardError` that says why there are none, so one bad image never hides the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from typing import Protocol, TypeVar

from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, Platform, ScanMode

Outcome = ImageFacts | DistroguardError
"""What one lookup ends in: the image's facts, or why there are none."""

K = TypeVar("K", bound=Hashable)


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
    outcomes: dict[K, Outcome] = {}
    missing: list[K] = []
    for key, (image, resolver) in lookups.items():
        facts = resolver.cached(image, platform, mode)
        if facts is None:
            missing.append(key)
            continue
        outcomes[key] = facts
        if on_done is not None:
            on_done(key, facts)
    if missing:  # a task per image only for what the cache cannot answer at once
        limit = asyncio.Semaphore(max(1, len(missing) if concurrency is None else concurrency))

        async def one(key: K) -> None:
            image, resolver = lookups[key]
            async with limit:
                outcome: Outcome
                try:
                    outcome = await resolver.resolve(image, platform, mode, budget)
                except DistroguardError as exc:
                    outcome = exc
            outcomes[key] = outcome
            if on_done is not None:
                on_done(key, outcome)

        await asyncio.gather(*(one(key) for key in missing))
    return {key: outcomes[key] for key in lookups}
