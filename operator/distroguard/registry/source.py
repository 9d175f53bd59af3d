"""Image sources the resolver reads from: a registry (`RegistrySource`), and `open_source` to pick
one.

source = open_source("oci:/images/app:1.0", client=client)     # or docker-archive:..., or a
reference resolved = await source.resolve(Platform.parse("linux/arm64")) config = await
source.read_blob(resolved.manifest.config, max_bytes=8 << 20) async for chunk in
source.open_blob(resolved.manifest.layers[0]): ...
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from distroguard.model import ImageRef, Platform
from distroguard.registry.archive import PREFIX as ARCHIVE_PREFIX
from distroguard.registry.archive import DockerArchiveSource
from distroguard.registry.client import RegistryClient
from distroguard.registry.contract import (
    MAX_CONFIG_BYTES,
    ImageSource,
    ResolvedImage,
    resolve_platform,
)
from distroguard.registry.layout import PREFIX as LAYOUT_PREFIX
from distroguard.registry.layout import OciLayoutSource
from distroguard.registry.manifest import Descriptor
from distroguard.registry.meter import ByteMeter

__all__ = [
    "DockerArchiveSource",
    "ImageSource",
    "OciLayoutSource",
    "RegistrySource",
    "ResolvedImage",
    "open_source",
]


class RegistrySource:
    """An image in a registry. Without a digest (in the ref or given), `resolve` HEADs the tag
    first.
    """

    def __init__(
        self,
        client: RegistryClient,
        ref: ImageRef,
        *,
        digest: str | None = None,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> None:
        self.client = client
        self.ref = ref
        self.description = str(ref)
        self.meter = meter or ByteMeter()
        self.deadline = deadline
        self._digest = digest or ref.digest
        self._configs: dict[str, bytes] = {}

    async def resolve(self, platform: Platform) -> ResolvedImage:
        digest = self._digest or await self.client.head_digest(
            self.ref, deadline=self.deadline, meter=self.meter
        )
        media_type, body, digest = await self.client.get_manifest(
            self.ref, digest, deadline=self.deadline, meter=self.meter
        )
        return await resolve_platform(
            media_type,
            body,
            digest,
            platform,
            fetch=self._fetch,
            read_config=self.read_config,
            what=self.description,
        )

    async def read_blob(self, desc: Descriptor, *, max_bytes: int) -> bytes:
        # The config read while resolving a single-platform image is not fetched twice.
        cached = self._configs.get(desc.digest)
        if cached is not None and len(cached) <= max_bytes:
            return cached
        return await self.client.read_blob(
            self.ref, desc, max_bytes=max_bytes, deadline=self.deadline, meter=self.meter
        )

    def open_blob(self, desc: Descriptor) -> AsyncGenerator[bytes, None]:
        return self.client.stream_blob(self.ref, desc, deadline=self.deadline, meter=self.meter)

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
    """
    if text.startswith(LAYOUT_PREFIX):
        return OciLayoutSource(text.removeprefix(LAYOUT_PREFIX))
    if text.startswith(ARCHIVE_PREFIX):
        return DockerArchiveSource(text.removeprefix(ARCHIVE_PREFIX))
    return RegistrySource(client, ImageRef.parse(text), deadline=deadline)
