"""`docker-archive:PATH[:NAME]`: a `docker save` tarball as an image source.

Two generations exist. Docker 25+ writes an OCI image layout inside the tar (plus a `manifest.json`
for older tools): that layout is read as such, keeping the image's real manifest digest. Older
archives have only `manifest.json` (`Config` and `Layers` paths, `RepoTags`) and no manifest: one is
made up from the config, with the config digest (Docker's image ID) standing for the image digest.

The archive is read in place (member offsets found once, then chunked reads in a thread); a
compressed archive (`docker save | gzip`) is refused with the advice to decompress it, since reading
a member of it would mean decompressing everything before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from distroguard.errors import LocalImageError, PlatformNotFound, SourceError
from distroguard.model import Platform
from distroguard.registry import mediatypes as mt
from distroguard.registry.contract import MAX_CONFIG_BYTES, ResolvedImage
from distroguard.registry.digest import digest_of
from distroguard.registry.layout import OciLayoutSource
from distroguard.registry.localfiles import (
    TarStore,
    read_file,
    read_verified,
    split_location,
    stream_verified,
)
from distroguard.registry.manifest import Descriptor, ImageManifest, parse_config
from distroguard.registry.meter import ByteMeter

PREFIX = "docker-archive:"
#: Largest manifest.json read (one entry per image saved).
MAX_ARCHIVE_MANIFEST_BYTES = 4 * 1024 * 1024


class DockerArchiveSource:
    """An image in a `docker save` tarball; `name` (a RepoTags entry) picks one when there are
    several.
    """

    def __init__(self, location: str, *, meter: ByteMeter | None = None) -> None:
        self._location = location
        self.description = f"{PREFIX}{location}"
        self.meter = meter or ByteMeter()
        self._store: TarStore | None = None
        self._name: str | None = None
        self._oci: OciLayoutSource | None = None
        self._paths: dict[str, str] = {}  # blob digest → member name (legacy archives)
        self._config: tuple[str, bytes] | None = None

    async def _open(self) -> TarStore:
        if self._store is None:
            path, self._name = await asyncio.to_thread(
                split_location, self._location, Path.is_file, "docker-archive file"
            )
            self._store = await TarStore.open(path)
        return self._store

    async def resolve(self, platform: Platform) -> ResolvedImage:
        store = await self._open()
        names = set(store.names)
        if "oci-layout" in names and "index.json" in names:
            self._oci = OciLayoutSource(
                store=store, name=self._name, description=self.description, meter=self.meter
            )
            return await self._oci.resolve(platform)
        if "manifest.json" not in names:
            raise LocalImageError(
                f"{self.description}: not a docker save archive (no manifest.json, no index.json)"
            )
        return await self._resolve_legacy(store, platform)

    async def read_blob(self, desc: Descriptor, *, max_bytes: int) -> bytes:
        if self._oci is not None:
            return await self._oci.read_blob(desc, max_bytes=max_bytes)
        if self._config is not None and desc.digest == self._config[0]:
            return self._config[1]
        return await read_verified(
            await self._open(),
            self._member(desc),
            desc,
            max_bytes=max_bytes,
            meter=self.meter,
            what=f"{self.description}: blob {desc.digest}",
        )

    async def open_blob(self, desc: Descriptor) -> AsyncGenerator[bytes, None]:
        if self._oci is not None:
            stream = self._oci.open_blob(desc)
        else:
            stream = stream_verified(
                await self._open(),
                self._member(desc),
                desc,
                meter=self.meter,
                what=f"{self.description}: layer {desc.digest}",
            )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ legacy archives

    def _member(self, desc: Descriptor) -> str:
        member = self._paths.get(desc.digest)
        if member is None:
            raise LocalImageError(f"{self.description}: no blob {desc.digest} in the archive")
        return member

    def _entry(self, entries: list[Any]) -> dict[str, Any]:
        tags = [t for e in entries if isinstance(e, dict) for t in e.get("RepoTags") or ()]
        if self._name is not None:
            wanted = self._name
            picked = [
                e
                for e in entries
                if isinstance(e, dict)
                and any(t == wanted or str(t).endswith(f"/{wanted}") for t in e.get("RepoTags") or ())
            ]
            if not picked:
                raise LocalImageError(
                    f"{self.description}: no image tagged {wanted!r} "
                    f"(tags: {', '.join(map(str, tags)) or 'none'})"
                )
            entries = picked
        if len(entries) != 1:
            raise LocalImageError(
                f"{self.description}: holds {len(entries)} images; name one as "
                f"{PREFIX}PATH:NAME (tags: {', '.join(map(str, tags)) or 'none'})"
            )
        entry = entries[0]
        if not isinstance(entry, dict):
            raise LocalImageError(f"{self.description}: manifest.json entries must be objects")
        return entry

    async def _resolve_legacy(self, store: TarStore, platform: Platform) -> ResolvedImage:
        raw = await read_file(store, "manifest.json", MAX_ARCHIVE_MANIFEST_BYTES, self.meter)
        try:
            entries = json.loads(raw)
        except ValueError:
            raise LocalImageError(f"{self.description}: manifest.json is not valid JSON") from None
        if not isinstance(entries, list):
            raise LocalImageError(f"{self.description}: manifest.json must be a list")
        entry = self._entry(entries)
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise LocalImageError(f"{self.description}: manifest.json entry lacks Config or Layers")
        config_body = await read_file(store, config_name, MAX_CONFIG_BYTES, self.meter)
        config_digest = digest_of(config_body)
        config = parse_config(config_body, f"{self.description}: config")
        found = config.platform
        if found is not None and not platform.matches(found):
            raise PlatformNotFound(str(platform), [str(found)])
        if len(config.diff_ids) != len(layer_names):
            raise SourceError(
                f"{self.description}: config lists {len(config.diff_ids)} layers, "
                f"manifest.json {len(layer_names)}"
            )
        layers = []
        for name, diff_id in zip(layer_names, config.diff_ids, strict=True):
            if not isinstance(name, str):
                raise LocalImageError(f"{self.description}: Layers entries must be paths")
            layers.append(await self._layer(store, name, diff_id))
        self._config = (config_digest, config_body)
        manifest = ImageManifest(
            media_type=mt.OCI_MANIFEST,
            config=Descriptor(mt.OCI_CONFIG, config_digest, len(config_body)),
            layers=tuple(layers),
        )
        return ResolvedImage(config_digest, config_digest, manifest, found or platform)

    async def _layer(self, store: TarStore, name: str, diff_id: str) -> Descriptor:
        """A descriptor for a layer member: uncompressed ones are named by their diff_id (checked
        while streaming); compressed ones (some tools write them) are hashed once here.
        """
        size = await store.size(name)
        if size is None:
            raise LocalImageError(f"{self.description}: layer {name!r} is missing from the archive")
        head = b""
        stream = store.stream(name, chunk_size=4)
        try:
            head = await anext(stream, b"")
        finally:
            await stream.aclose()
        if head.startswith(b"\x1f\x8b"):
            media_type, digest = mt.OCI_LAYER_GZIP, await self._hash(store, name)
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            media_type, digest = mt.OCI_LAYER_ZSTD, await self._hash(store, name)
        else:
            media_type, digest = mt.OCI_LAYER, diff_id
        self._paths[digest] = name
        return Descriptor(media_type, digest, size)

    async def _hash(self, store: TarStore, name: str) -> str:
        digest = hashlib.sha256()
        async for chunk in store.stream(name, meter=self.meter):
            digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"
