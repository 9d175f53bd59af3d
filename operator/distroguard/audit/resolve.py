"""Resolve every distinct image of an audit once, concurrently and bounded.

An image is resolved with the local credentials, plus a namespace's pull secrets when they name the
registry its lookup goes to (its mirror's host for a mirrored registry, as admission routes it:
`distroguard.resolver.routing`): `Lookup.credentials` is then the fingerprint of those secrets, so that two
namespaces with the same secrets share one lookup, and one namespace's secret is never used for another's
images. Each credential set gets its own registry client (credentials are per client); all share one bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from distroguard.model import Platform, ScanMode
from distroguard.model.platform import parse_platforms
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.resolver import Resolver
from distroguard.resolver.many import PlatformsOutcome, resolve_many_platforms
from distroguard.resolver.routing import uses_credentials

Outcome = PlatformsOutcome
"""What a lookup ends in: each of its platforms' facts, or why there are none."""
DEFAULT_CONCURRENCY = 8
LOCAL = ""
"""`Lookup.credentials` of an image resolved with the local credentials alone."""


@dataclass(frozen=True, slots=True, order=True)
class Lookup:
    image: str
    credentials: str = LOCAL
    """LOCAL, or the fingerprint of the pull secrets that name the image's registry."""
    platforms: str = ""
    """The platforms judged, comma-separated (`audit.platforms`); "": `ResolveSettings.platform`."""

    def wanted(self, default: Platform) -> tuple[Platform, ...]:
        if not self.platforms:
            return (default,)
        return parse_platforms(self.platforms) or (default,)


@dataclass(frozen=True, slots=True)
class ResolveSettings:
    platform: Platform
    mode: ScanMode = "fast"
    registry: RegistrySettings | None = None
    credentials: CredentialStore | None = None
    """The local credentials (a docker config.json)."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Images resolved at the same time, over all credential sets."""


def lookup_for(
    image: str, pull: CredentialStore | None, fingerprint: str, mirrors: Mapping[str, str] | None = None
) -> Lookup:
    """The lookup of `image` for a workload whose pull secrets are `pull` (None: not used), with the
    registry mirrors in force (source registry -> mirror)."""
    if pull is None or not fingerprint or not uses_credentials(image, pull, mirrors or {}):
        return Lookup(image)
    return Lookup(image, fingerprint)


async def resolve_lookups(
    lookups: Sequence[Lookup],
    settings: ResolveSettings,
    pull_stores: Mapping[str, CredentialStore],
    on_done: Callable[[Lookup, Outcome], None] | None = None,
) -> dict[Lookup, Outcome]:
    """Facts (or the error) of each distinct lookup, on each of its platforms that its image offers;
    `on_done` is called as each one finishes."""
    local = settings.credentials or CredentialStore()
    async with contextlib.AsyncExitStack() as stack:
        resolvers: dict[str, Resolver] = {}
        targets: dict[Lookup, tuple[str, Resolver]] = {}
        for lookup in lookups:
            resolver = resolvers.get(lookup.credentials)
            if resolver is None:
                store = (
                    local
                    if lookup.credentials == LOCAL
                    else local.merged(pull_stores.get(lookup.credentials, CredentialStore()))
                )
                client = await stack.enter_async_context(RegistryClient(settings.registry, store))
                resolver = resolvers[lookup.credentials] = Resolver(client)
            targets[lookup] = (lookup.image, resolver)
        return await resolve_many_platforms(
            targets,
            mode=settings.mode,
            concurrency=settings.concurrency,
            on_done=on_done,
            each={lookup: lookup.wanted(settings.platform) for lookup in targets},
        )
