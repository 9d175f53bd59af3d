"""`oci:PATH[:NAME]`: an OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as an
image source.

The same reader serves directories and the OCI layout that newer `docker save` archives carry inside
the tar (see `archive`): it only needs a FileStore. Every blob is verified against its digest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path

from distroguard.errors import LocalImageError, UnsupportedMediaType
from distroguard.model import Platform
from distroguard.registry import mediatypes as mt
from distroguard.registry.contract import MAX_CONFIG_BYTES, ResolvedImage, resolve_platform
from distroguard.registry.localfiles import (
    DirectoryStore,
    FileStore,
    read_file,
    read_verified,
    split_location,
    stream_verified,
)
from distroguard.registry.manifest import (
    Descriptor,
    ImageIndex,
    is_attestation,
    parse_manifest,
    select_platform,
)
from distroguard.registry.meter import ByteMeter

PREFIX = "oci:"
#: Annotations that name an image in a layout's index.json (OCI's, and containerd's full reference).
NAME_ANNOTATIONS = ("org.opencontainers.image.ref.name", "io.containerd.image.name")
#: Largest index.json read (it lists the images of the layout).
MAX_INDEX_JSON_BYTES = 4 * 1024 * 1024
_MAX_OCI_LAYOUT_BYTES = 64 * 1024


def blob_path(digest: str) -> str:
    """`blobs/<alg>/<hex>` (the digest is validated before it gets here, so no `..` can sneak
    in).
    """
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def image_names(desc: Descriptor) -> tuple[str, ...]:
    return tuple(desc.annotations[key] for key in NAME_ANNOTATIONS if key in desc.annotations)


def name_matches(desc: Descriptor, wanted: str) -> bool:
    """`3.12` matches `3.12` and `docker.io/library/python:3.12`; `python:3.12` matches the latter
    too.
    """
    return any(name == wanted or name.endswith((f"/{wanted}", f":{wanted}")) for name in image_names(desc))


class OciLayoutSource:
    """An image in an OCI image layout; `name` picks one by its ref.name annotation when there are
    several.
    """

    def __init__(
        self,
        location: str | None = None,
        *,
        store: FileStore | None = None,
        name: str | None = None,
        description: str | None = None,
        meter: ByteMeter | None = None,
    ) -> None:
        if (location is None) == (store is None):
            raise ValueError("give either a location (PATH[:NAME]) or a store")
        self._location = location
        self._store = store
        self._name = name
        where = location if store is None else store.description
        self.description = description or f"{PREFIX}{where}"
        self.meter = meter or ByteMeter()
        self._configs: dict[str, bytes] = {}

    async def _open(self) -> FileStore:
        if self._store is None:
            path, name = await asyncio.to_thread(
                split_location, self._location or "", Path.is_dir, "OCI layout directory"
            )
            self._store, self._name = DirectoryStore(path), name
        return self._store

    async def resolve(self, platform: Platform) -> ResolvedImage:
        store = await self._open()
        await self._check_layout(store)
        index_body = await read_file(store, "index.json", MAX_INDEX_JSON_BYTES, self.meter)
        index = parse_manifest(mt.OCI_INDEX, index_body, f"{self.description}: index.json")
        if not isinstance(index, ImageIndex):
            raise LocalImageError(f"{self.description}: index.json is not an image index")
        top = self._top(index, platform)
        media_type, body = await self._fetch(top)
        return await resolve_platform(
            media_type,
            body,
            top.digest,
            platform,
            fetch=self._fetch,
            read_config=self._read_config,
            what=self.description,
            declared=top.platform if top.media_type in mt.MANIFEST_TYPES else None,
        )

    async def read_blob(self, desc: Descriptor, *, max_bytes: int) -> bytes:
        cached = self._configs.get(desc.digest)
        if cached is not None and len(cached) <= max_bytes:
            return cached
        store = await self._open()
        return await read_verified(
            store,
            blob_path(desc.digest),
            desc,
            max_bytes=max_bytes,
            meter=self.meter,
            what=f"{self.description}: blob {desc.digest}",
        )

    async def open_blob(self, desc: Descriptor) -> AsyncGenerator[bytes, None]:
        store = await self._open()
        stream = stream_verified(
            store,
            blob_path(desc.digest),
            desc,
            meter=self.meter,
            what=f"{self.description}: blob {desc.digest}",
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ internals

    async def _check_layout(self, store: FileStore) -> None:
        if await store.size("oci-layout") is None:
            raise LocalImageError(f"{self.description}: not an OCI image layout (no oci-layout file)")
        raw = await read_file(store, "oci-layout", _MAX_OCI_LAYOUT_BYTES, self.meter)
        try:
            version = json.loads(raw).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            version = None
        if not isinstance(version, str) or not version.startswith("1."):
            raise LocalImageError(
                f"{self.description}: oci-layout has imageLayoutVersion {version!r}, expected 1.x"
            )

    def _top(self, index: ImageIndex, platform: Platform) -> Descriptor:
        """The entry of index.json the source names: by name, the only one, or by platform."""
        entries = [d for d in index.manifests if not is_attestation(d)]
        names = sorted({n for d in entries for n in image_names(d)})
        if self._name is not None:
            entries = [d for d in entries if name_matches(d, self._name)]
            if not entries:
                have = ", ".join(names) or "none"
                raise LocalImageError(f"{self.description}: no image named {self._name!r} (names: {have})")
        if len(entries) == 1:
            return entries[0]
        if entries and all(d.platform is not None for d in entries):
            return select_platform(ImageIndex(mt.OCI_INDEX, tuple(entries)), platform)
        have = ", ".join(names) or "none"
        raise LocalImageError(
            f"{self.description}: holds {len(entries)} images; name one as {PREFIX}PATH:NAME (names: {have})"
        )

    async def _fetch(self, desc: Descriptor) -> tuple[str | None, bytes]:
        store = await self._open()
        if desc.media_type not in mt.INDEX_TYPES | mt.MANIFEST_TYPES:
            raise UnsupportedMediaType(
                f"{self.description}: {desc.digest} is a {desc.media_type}, not an image manifest"
            )
        body = await read_verified(
            store,
            blob_path(desc.digest),
            desc,
            max_bytes=MAX_INDEX_JSON_BYTES,
            meter=self.meter,
            what=f"{self.description}: manifest {desc.digest}",
        )
        return desc.media_type, body

    async def _read_config(self, desc: Descriptor) -> bytes:
        body = await self.read_blob(desc, max_bytes=MAX_CONFIG_BYTES)
        self._configs[desc.digest] = body
        return body
