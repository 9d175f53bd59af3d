"""What the resolver consumes from any image source, and the index → manifest walk they all
share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from distroguard.errors import PlatformNotFound, ScanLimitExceeded, SourceError
from distroguard.model import Platform
from distroguard.registry.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_config,
    parse_manifest,
    select_platform,
)
from distroguard.registry.meter import ByteMeter

#: Indexes nested in indexes followed at most (real images nest none; OCI allows it).
MAX_INDEX_DEPTH = 4
#: Largest image config read while resolving (real ones are a few KB; long histories reach 100s of
#: KB).
MAX_CONFIG_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    digest: str
    """Digest of what the reference names (an index or a manifest)."""
    manifest_digest: str
    """Digest of the platform manifest (equal to `digest` for a single-platform image)."""
    manifest: ImageManifest
    platform: Platform
    """The platform of the chosen manifest, as its index entry or its config declares it."""


class ImageSource(Protocol):
    """Where an image's bytes come from: a registry, an OCI layout, a `docker save` archive."""

    description: str
    """What a person would call it, e.g. `127.0.0.1:5000/library/python:3.12` or `oci:/path`."""
    meter: ByteMeter
    """Bytes read from the source so far, for this image."""

    async def resolve(self, platform: Platform) -> ResolvedImage: ...

    async def read_blob(self, desc: Descriptor, *, max_bytes: int) -> bytes: ...

    def open_blob(self, desc: Descriptor) -> AsyncIterator[bytes]: ...


FetchManifest = Callable[[Descriptor], Awaitable[tuple[str | None, bytes]]]
"""Fetch the manifest a descriptor names, verified: (media type as served, if known; body)."""
ReadConfig = Callable[[Descriptor], Awaitable[bytes]]


async def resolve_platform(
    media_type: str | None,
    body: bytes,
    digest: str,
    wanted: Platform,
    *,
    fetch: FetchManifest,
    read_config: ReadConfig,
    what: str,
    declared: Platform | None = None,
) -> ResolvedImage:
    """Walk from a fetched manifest or index to the manifest for `wanted`.

    An index picks its entry with `select_platform`. A lone manifest has no platform of its own
    unless `declared` (the entry that named it) gives one, so its config is read and checked: an
    arm64-only image asked for as amd64 is PlatformNotFound, never a silent pick.
    """
    top_digest = digest
    parsed = parse_manifest(media_type, body, what)
    chosen = declared
    depth = 0
    while isinstance(parsed, ImageIndex):
        depth += 1
        if depth > MAX_INDEX_DEPTH:
            raise ScanLimitExceeded("MAX_INDEX_DEPTH", MAX_INDEX_DEPTH, f"{what}: indexes nest deeper")
        entry = select_platform(parsed, wanted, what)
        chosen = entry.platform
        served, child = await fetch(entry)
        if len(child) != entry.size:
            raise SourceError(
                f"{what}: manifest {entry.digest} has {len(child)} bytes, the index says {entry.size}"
            )
        digest, parsed = entry.digest, parse_manifest(served or entry.media_type, child, what)
    if chosen is not None:
        if not wanted.matches(chosen):
            raise PlatformNotFound(str(wanted), [str(chosen)])
        return ResolvedImage(top_digest, digest, parsed, chosen)
    config = parse_config(await read_config(parsed.config), f"{what}: config")
    found = config.platform
    if found is not None and not wanted.matches(found):
        raise PlatformNotFound(str(wanted), [str(found)])
    return ResolvedImage(top_digest, digest, parsed, found or wanted)
