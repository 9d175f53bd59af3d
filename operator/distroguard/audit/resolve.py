"""Resolve every distinct image of an audit once, concurrently and bounded.

An image is resolved with the local credentials, plus a namespace's pull secrets when they name the
image's registry: `Lookup.credentials` is then the fingerprint of those secrets, so that two namespaces
with the same secrets share one lookup, and one namespace's secret is never used for another's images.
Each credential set gets its own registry client (credentials are per client); all share one bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from distroguard.errors import DistroguardError, InvalidReference
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.model.reference import ImageRef
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.resolver import Resolver

DEFAULT_CONCURRENCY = 8
LOCAL = ""
"""`Lookup.credentials` of an image resolved with the local credentials alone."""

Outcome = ImageFacts | DistroguardError


@dataclass(frozen=True, slots=True, order=True)
class Lookup:
    image: str
    credentials: str = LOCAL
    """LOCAL, or the fingerprint of the pull secrets that name the image's registry."""


@dataclass(frozen=True, slots=True)
class ResolveSettings:
    platform: Platform
    mode: ScanMode = "fast"
    registry: RegistrySettings | None = None
    credentials: CredentialStore | None = None
    """The local credentials (a docker config.json)."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Images resolved at the same time, over all credential sets."""


def lookup_for(image: str, pull: CredentialStore | None, fingerprint: str) -> Lookup:
    """The lookup of `image` for a workload whose pull secrets are `pull` (None: not used)."""
    if pull is None or not fingerprint:
        return Lookup(image)
    try:
        registry = ImageRef.parse(image).registry
    except InvalidReference:
        return Lookup(image)
    return Lookup(image, fingerprint) if registry in pull else Lookup(image)


async def resolve_lookups(
    lookups: Sequence[Lookup],
    settings: ResolveSettings,
    pull_stores: Mapping[str, CredentialStore],
    on_done: Callable[[Lookup, Outcome], None] | None = None,
) -> dict[Lookup, Outcome]:
    """Facts (or the error) of each distinct lookup; `on_done` is called as each one finishes."""
    local = settings.credentials or CredentialStore()
    limit = asyncio.Semaphore(max(1, settings.concurrency))
    results: dict[Lookup, Outcome] = {}
    by_credentials: dict[str, list[Lookup]] = {}
    for lookup in dict.fromkeys(lookups):
        by_credentials.setdefault(lookup.credentials, []).append(lookup)

    async def one(resolver: Resolver, lookup: Lookup) -> None:
        async with limit:
            outcome: Outcome
            try:
                outcome = await resolver.resolve(lookup.image, settings.platform, settings.mode)
            except DistroguardError as exc:
                outcome = exc
        results[lookup] = outcome
        if on_done is not None:
            on_done(lookup, outcome)

    async def with_credentials(key: str, wanted: list[Lookup]) -> None:
        store = local if key == LOCAL else local.merged(pull_stores.get(key, CredentialStore()))
        async with RegistryClient(settings.registry, store) as client:
            resolver = Resolver(client)
            await asyncio.gather(*(one(resolver, lookup) for lookup in wanted))

    await asyncio.gather(*(with_credentials(key, wanted) for key, wanted in by_credentials.items()))
    return results
