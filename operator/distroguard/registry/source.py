"""Image sources the resolver reads from: a registry (`RegistrySource`), and `open_source` to pick
one.

source = open_source("oci:/images/app:1.0", client=client)     # or docker-archive:..., or a
reference resolved = await source.resolve(Platform.parse("linux/arm64")) config = await
source.read_blob(resolved.manifest.config, max_bytes=8 << 20) async for chunk in
source.open_blob(resolved.manifest.layers[0]): ...
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from distroguard.model import ImageRef, Platform
from distroguard.model.reference import is_local_image
from distroguard.registry.client import RegistryClient
from distroguard.registry.contract import (
    MAX_CONFIG_BYTES,
    ImageSource,
    ResolvedImage,
    resolve_platform,
)
from distroguard.registry.manifest import Descriptor, ImageManifest
from distroguard.registry.meter import ByteMeter
from distroguard.registry.pipelining import AheadStream

__all__ = [
    "ImageSource",
    "RegistrySource",
    "ResolvedImage",
    "open_source",
]


class RegistrySource:
    """An image in a registry. Without a digest (in the ref or given), `resolve` asks for the tag's manifest
    and takes the digest of what it got (verified against the registry's Docker-Content-Digest).

    `manifest`: the body of the manifest or index `digest` names, with its media type as served, when the
    caller has already read it (and verified it against `digest`): `read_manifest` hands it over instead of
    asking again. `ahead`: which blob of a manifest to start reading beside the config's request (`prefetch`),
    or None. Blobs started ahead and never taken by a reader are dropped by `aclose`, which every owner
    calls.
    """

    def __init__(
        self,
        client: RegistryClient,
        ref: ImageRef,
        *,
        digest: str | None = None,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
        manifest: tuple[str, bytes] | None = None,
        ahead: Callable[[ImageManifest], Descriptor | None] | None = None,
    ) -> None:
        self.client = client
        self.ref = ref
        self.description = str(ref)
        self.meter = meter or ByteMeter()
        self.deadline = deadline
        self._digest = digest or ref.digest
        self._manifest = manifest if self._digest is not None else None
        self._ahead_of = ahead
        self._configs: dict[str, bytes] = {}
        self._streams: dict[str, AheadStream] = {}
        """Blobs started ahead, until their reader takes them (then they are the reader's to close)."""

    async def read_manifest(self) -> tuple[str, bytes, str]:
        """(media type as served, body, digest) of what the reference names: the body given, or fetched (by
        digest when known, else by tag)."""
        if self._manifest is not None and self._digest is not None:
            (media_type, body), self._manifest = self._manifest, None
            self.meter.add(len(body))
            return media_type, body, self._digest
        reference = self._digest or self.ref.tag or "latest"
        media_type, body, digest = await self.client.get_manifest(
            self.ref, reference, deadline=self.deadline, meter=self.meter
        )
        self._digest = digest
        return media_type, body, digest

    async def resolve(self, platform: Platform) -> ResolvedImage:
        media_type, body, digest = await self.read_manifest()
        return await resolve_platform(
            media_type,
            body,
            digest,
            platform,
            fetch=self._fetch,
            read_config=self.read_config,
            what=self.description,
            on_manifest=self.prefetch,
        )

    def prefetch(self, manifest: ImageManifest) -> None:
        """Start reading the blob `ahead` picks of `manifest`, unless one is started already or the client has
        no slot to spare (then it is read when asked, as any other)."""
        desc = self._ahead_of(manifest) if self._ahead_of is not None else None
        if desc is None or desc.digest in self._streams:
            return
        started = self.client.stream_ahead(self.ref, desc, deadline=self.deadline, meter=self.meter)
        if started is not None:
            self._streams[desc.digest] = started

    async def read_blob(self, desc: Descriptor, *, max_bytes: int) -> bytes:
        # The config read while resolving a single-platform image is not fetched twice.
        cached = self._configs.get(desc.digest)
        if cached is not None and len(cached) <= max_bytes:
            return cached
        return await self.client.read_blob(
            self.ref, desc, max_bytes=max_bytes, deadline=self.deadline, meter=self.meter
        )

    def open_blob(self, desc: Descriptor) -> AsyncGenerator[bytes, None]:
        started = self._streams.pop(desc.digest, None)
        if started is not None:
            return started.stream()
        return self.client.stream_blob(self.ref, desc, deadline=self.deadline, meter=self.meter)

    async def aclose(self) -> None:
        """Drop the blobs started ahead that no reader took (a cached base made them needless, or the lookup
        failed first)."""
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            await stream.aclose()

    async def _fetch(self, desc: Descriptor) -> tuple[str | None, bytes]:
        media_type, body, _ = await self.client.get_manifest(
            self.ref, desc.digest, deadline=self.deadline, meter=self.meter
        )
        return media_type or None, body

    async def read_config(self, desc: Descriptor) -> bytes:
        """An image config, kept so that reading it again for the scan costs nothing."""
        body = await self.read_blob(desc, max_bytes=MAX_CONFIG_BYTES)
        self._configs[desc.digest] = body
        return body


def open_source(text: str, *, client: RegistryClient, deadline: float | None = None) -> ImageSource:
    """The source `text` names: `oci:PATH[:NAME]`, `docker-archive:PATH[:NAME]`, or an image
    reference.

    Nothing is read yet (not even the file system): errors surface from `resolve`. A malformed
    reference raises InvalidReference here.

    The local sources (and `tarfile` under them) are imported only when one is named: a command that
    reads registries alone starts without them.
    """
    if is_local_image(text):
        from distroguard.registry import archive, layout

        if text.startswith(layout.PREFIX):
            return layout.OciLayoutSource(text.removeprefix(layout.PREFIX))
        if text.startswith(archive.PREFIX):
            return archive.DockerArchiveSource(text.removeprefix(archive.PREFIX))
    return RegistrySource(client, ImageRef.parse(text), deadline=deadline)
