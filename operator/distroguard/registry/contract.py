"""What the resolver consumes from any image source, and the index → manifest walk they all
share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from distroguard.errors import PlatformNotFound, ScanLimitExceeded, SourceError
from distroguard.model import Platform
from distroguard.model.platform import DEFAULT_PLATFORM, MAX_PLATFORMS
from distroguard.registry.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_config,
    parse_manifest,
    runnable_entries,
    select_entries,
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


@dataclass(frozen=True, slots=True)
class Offer:
    """The platforms an image offers: its index's runnable entries (at most `MAX_PLATFORMS`), or its one
    manifest. Immutable for a digest, so cached by it: a second platform of a known image reads no index."""

    digest: str
    """Digest of what the reference names."""
    entries: tuple[Descriptor, ...]
    """Each platform's manifest, its platform set (a lone manifest's from its config; None when the config
    declares none)."""
    single: bool = False
    """A single manifest, not an index: judged on its one platform whatever is asked."""
    manifest: ImageManifest | None = None
    """The manifest itself, for a single-platform image read here (its one entry names it); None for one
    learnt elsewhere (an ImageFacts object), whose manifest is read again if ever needed."""

    platforms: tuple[str, ...] = field(init=False, compare=False)
    """The platforms offered, as text (an entry without one left out)."""
    _chosen: dict[int, tuple[object, tuple[tuple[Descriptor, str], ...]]] = field(
        init=False, compare=False, repr=False
    )
    """`keyed`'s recent answers, by the identity of what was wanted (the cluster's platforms are one
    tuple until they change): the warm path chooses without comparing or formatting platforms."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "platforms", tuple(str(d.platform) for d in self.entries if d.platform is not None)
        )
        object.__setattr__(self, "_chosen", {})

    def choose(self, wanted: tuple[Platform, ...] | None) -> tuple[Descriptor, ...]:
        """The entries judged for `wanted` (None: all): a single-platform image's one whatever is wanted,
        else `select_entries`."""
        return tuple(entry for entry, _ in self.keyed(wanted))

    def keyed(self, wanted: tuple[Platform, ...] | None) -> tuple[tuple[Descriptor, str], ...]:
        """`choose`'s entries, each with its platform as text (linux/amd64 for one that names none)."""
        found = self._chosen.get(id(wanted))
        if found is not None and found[0] is wanted:
            return found[1]
        entries = self.entries if self.single or wanted is None else select_entries(self.entries, wanted)
        chosen = tuple((e, str(e.platform or DEFAULT_PLATFORM)) for e in entries)
        if len(self._chosen) >= _CHOSEN_KEPT:
            self._chosen.clear()
        self._chosen[id(wanted)] = (wanted, chosen)
        return chosen


_CHOSEN_KEPT = 8


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
OnManifest = Callable[[ImageManifest], None]
"""Told of a platform's manifest as soon as it is parsed, before its config is read (a source may start
reading a layer beside the config: `RegistrySource.prefetch`)."""


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
    on_manifest: OnManifest | None = None,
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
    if on_manifest is not None:
        on_manifest(parsed)
    config = parse_config(await read_config(parsed.config), f"{what}: config")
    found = config.platform
    if found is not None and not wanted.matches(found):
        raise PlatformNotFound(str(wanted), [str(found)])
    return ResolvedImage(top_digest, digest, parsed, found or wanted)


async def read_offer(
    media_type: str | None,
    body: bytes,
    digest: str,
    *,
    read_config: ReadConfig,
    what: str,
    on_manifest: OnManifest | None = None,
) -> Offer:
    """The platforms of a fetched manifest or index. An index lists them (nested indexes are not followed:
    real images nest none); a lone manifest's config is read for its platform."""
    parsed = parse_manifest(media_type, body, what)
    if isinstance(parsed, ImageIndex):
        return Offer(digest, runnable_entries(parsed)[:MAX_PLATFORMS])
    if on_manifest is not None:
        on_manifest(parsed)
    config = parse_config(await read_config(parsed.config), f"{what}: config")
    entry = Descriptor(parsed.media_type, digest, len(body), platform=config.platform)
    return Offer(digest, (entry,), single=True, manifest=parsed)
