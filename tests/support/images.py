"""Test images built in memory: tar layers (gzip, zstd or plain), configs, OCI / Docker v2
manifests, multi-platform indexes with attestations; pushed through the registry HTTP API, or
written as an OCI layout directory or a `docker save` archive.

    image = (
        ImageBuilder(platform="linux/amd64")
        .layer({"etc/os-release": b"ID=debian\\n", "lib": Symlink("usr/lib")}, compression="gzip")
        .layer({"etc/motd": Whiteout()}, compression="zstd")
        .env("PYTHON_VERSION=3.12.1")
        .build()
    )
    digest = await push(registry.url, repo, "1.0", image, auth=registry.push_auth)
    write_oci_layout(tmp_path / "layout", image, names=["1.0"])
    write_docker_archive(tmp_path / "image.tar", image, repo_tags=["app:1.0"])

Everything is deterministic (fixed mtimes, uid 0, sorted entries), so the same input gives the same
digests.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import ssl
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
from yarl import URL

from distroguard.model import Platform
from distroguard.registry import mediatypes as mt

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

Compression = Literal["gzip", "zstd", "none"]
Format = Literal["oci", "docker"]
MTIME = 1_700_000_000


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- layer entries


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


@dataclass(frozen=True)
class Whiteout:
    """Put at `dir/name`: written as `dir/.wh.name`, hiding `name` of lower layers."""


@dataclass(frozen=True)
class Opaque:
    """Put at a directory path: written as `dir/.wh..wh..opq`, hiding the lower layers' contents."""


Entry = File | Dir | Symlink | Hardlink | Whiteout | Opaque


def _entry(value: Entry | bytes | str) -> Entry:
    if isinstance(value, bytes):
        return File(value)
    if isinstance(value, str):
        return File(value.encode())
    return value


def tar_bytes(files: Mapping[str, Entry | bytes | str], *, parents: bool = True) -> bytes:
    """An uncompressed layer tar; missing parent directories are added unless `parents` is False."""
    entries: dict[str, Entry] = {}
    for raw_path, value in files.items():
        path = raw_path.strip("/")
        entry = _entry(value)
        if isinstance(entry, Whiteout):
            head, _, name = path.rpartition("/")
            path = f"{head}/.wh.{name}" if head else f".wh.{name}"
            entry = File(b"")
        elif isinstance(entry, Opaque):
            path = f"{path}/.wh..wh..opq"
            entry = File(b"")
        entries[path] = entry
    if parents:
        for path in list(entries):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                entries.setdefault("/".join(parts[:i]), Dir())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(entries):
            entry = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            data: bytes | None = None
            if isinstance(entry, File):
                info.type, info.mode, info.size, data = (
                    tarfile.REGTYPE,
                    entry.mode,
                    len(entry.data),
                    entry.data,
                )
            elif isinstance(entry, Dir):
                info.type, info.mode = tarfile.DIRTYPE, entry.mode
            elif isinstance(entry, Symlink):
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
            elif isinstance(entry, Hardlink):
                info.type, info.mode, info.linkname = (
                    tarfile.LNKTYPE,
                    0o644,
                    entry.target.strip("/"),
                )
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return bytes(zstd.compress(data))
    return data


_LAYER_TYPES: dict[tuple[Format, Compression], str] = {
    ("oci", "gzip"): mt.OCI_LAYER_GZIP,
    ("oci", "zstd"): mt.OCI_LAYER_ZSTD,
    ("oci", "none"): mt.OCI_LAYER,
    ("docker", "gzip"): mt.DOCKER_LAYER_GZIP,
    # Docker v2 has no zstd type of its own; real tools use the OCI one in Docker manifests too.
    ("docker", "zstd"): mt.OCI_LAYER_ZSTD,
    ("docker", "none"): mt.DOCKER_LAYER,
}


# ---------------------------------------------------------------------- built artifacts


@dataclass(frozen=True)
class BuiltLayer:
    tar: bytes
    data: bytes
    compression: Compression
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class BuiltImage:
    """One platform's image: its config and manifest bodies and every blob they name."""

    config: bytes
    manifest: bytes
    media_type: str
    config_media_type: str
    layers: tuple[BuiltLayer, ...]
    platform: Platform

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {self.config_digest: self.config}
        out.update({layer.digest: layer.data for layer in self.layers})
        return out

    def descriptor(
        self, *, platform: bool = True, annotations: Mapping[str, str] | None = None
    ) -> dict[str, object]:
        desc: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
        }
        if platform:
            plat: dict[str, str] = {
                "os": self.platform.os,
                "architecture": self.platform.architecture,
            }
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            desc["platform"] = plat
        if annotations:
            desc["annotations"] = dict(annotations)
        return desc


@dataclass(frozen=True)
class BuiltIndex:
    """An index over images; `extra` are entries that are not runnable images (attestations)."""

    body: bytes
    media_type: str
    images: tuple[BuiltImage, ...]
    extra: tuple[BuiltImage, ...] = ()

    @property
    def digest(self) -> str:
        return sha256(self.body)

    @property
    def manifests(self) -> tuple[BuiltImage, ...]:
        return self.images + self.extra

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> dict[str, object]:
        desc: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.body),
        }
        if annotations:
            desc["annotations"] = dict(annotations)
        return desc


# ---------------------------------------------------------------------- builders


@dataclass
class ImageBuilder:
    platform: Platform | str = "linux/amd64"
    format: Format = "oci"
    _layers: list[BuiltLayer] = field(default_factory=list)
    _history: list[str] = field(default_factory=list)
    _env: list[str] = field(default_factory=list)
    _labels: dict[str, str] = field(default_factory=dict)
    _config_extra: dict[str, object] = field(default_factory=dict)
    _annotations: dict[str, str] = field(default_factory=dict)

    def layer(
        self,
        files: Mapping[str, Entry | bytes | str],
        compression: Compression = "gzip",
        *,
        created_by: str | None = None,
        parents: bool = True,
    ) -> ImageBuilder:
        tar = tar_bytes(files, parents=parents)
        return self.raw_layer(tar, compression, created_by=created_by)

    def raw_layer(
        self, tar: bytes, compression: Compression = "gzip", *, created_by: str | None = None
    ) -> ImageBuilder:
        media_type = _LAYER_TYPES[(self.format, compression)]
        self._layers.append(BuiltLayer(tar, compress(tar, compression), compression, media_type))
        self._history.append(created_by or f"layer {len(self._layers)}")
        return self

    def env(self, *assignments: str) -> ImageBuilder:
        self._env.extend(assignments)
        return self

    def label(self, key: str, value: str) -> ImageBuilder:
        self._labels[key] = value
        return self

    def annotate(self, key: str, value: str) -> ImageBuilder:
        self._annotations[key] = value
        return self

    def config_fields(self, **fields: object) -> ImageBuilder:
        """Extra top-level config fields (or `os=None` to drop one)."""
        self._config_extra.update(fields)
        return self

    def build(self) -> BuiltImage:
        platform = Platform.parse(self.platform) if isinstance(self.platform, str) else self.platform
        config: dict[str, object] = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Env": list(self._env), "Labels": dict(self._labels) or None},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self._layers]},
            "history": [{"created_by": text} for text in self._history],
        }
        if platform.variant:
            config["variant"] = platform.variant
        for key, value in self._config_extra.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        config_body = canonical_json(config)
        docker = self.format == "docker"
        config_type = mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
            "config": {
                "mediaType": config_type,
                "digest": sha256(config_body),
                "size": len(config_body),
            },
            "layers": [layer.descriptor() for layer in self._layers],
        }
        if self._annotations:
            manifest["annotations"] = dict(self._annotations)
        return BuiltImage(
            config=config_body,
            manifest=canonical_json(manifest),
            media_type=str(manifest["mediaType"]),
            config_media_type=config_type,
            layers=tuple(self._layers),
            platform=platform,
        )


def attestation_for(image: BuiltImage) -> BuiltImage:
    """A BuildKit-style attestation manifest (in-toto layer, platform unknown/unknown)."""
    statement = canonical_json({"_type": "https://in-toto.io/Statement/v0.1", "subject": []})
    layer = BuiltLayer(statement, statement, "none", "application/vnd.in-toto+json")
    config = canonical_json(
        {"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [layer.descriptor()],
    }
    return BuiltImage(
        config=config,
        manifest=canonical_json(manifest),
        media_type=mt.OCI_MANIFEST,
        config_media_type=mt.OCI_CONFIG,
        layers=(layer,),
        platform=Platform(os="unknown", architecture="unknown"),
    )


def build_index(
    images: Iterable[BuiltImage], *, format: Format = "oci", attestations: bool = False
) -> BuiltIndex:
    """An index (OCI) or manifest list (Docker) over `images`; with `attestations`, one per
    image.
    """
    runnable = tuple(images)
    extra = tuple(attestation_for(image) for image in runnable) if attestations else ()
    entries = [image.descriptor() for image in runnable]
    for image, attestation in zip(runnable, extra, strict=False):
        entries.append(
            attestation.descriptor(
                annotations={
                    "vnd.docker.reference.digest": image.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                }
            )
        )
    media_type = mt.DOCKER_MANIFEST_LIST if format == "docker" else mt.OCI_INDEX
    body = canonical_json({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
    return BuiltIndex(body=body, media_type=media_type, images=runnable, extra=extra)


# ---------------------------------------------------------------------- push


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Pusher:
    """Pushes blobs and manifests through the registry API (anonymous, basic, or bearer with
    basic).
    """

    def __init__(self, session: aiohttp.ClientSession, base: str, auth: tuple[str, str] | None):
        self.session = session
        self.base = URL(base)
        self.basic = basic_header(*auth) if auth else None
        self._header: str | None = None

    async def _request(
        self,
        method: str,
        url: URL,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        for _ in range(2):
            sent = dict(headers or {})
            if self._header:
                sent["Authorization"] = self._header
            # A fresh stream per attempt; big bytes bodies would make aiohttp warn.
            payload = io.BytesIO(data) if data else None
            async with self.session.request(
                method, url, data=payload, headers=sent, allow_redirects=False
            ) as response:
                body = await response.read()
                if response.status != 401:
                    return response.status, dict(response.headers), body
                challenge = response.headers.get("WWW-Authenticate", "")
            await self._authenticate(challenge)
        raise AssertionError(f"push: {method} {url}: still unauthorized")

    async def _authenticate(self, challenge: str) -> None:
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            assert self.basic is not None, "the registry wants credentials"
            self._header = self.basic
            return
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        scope = params.get("scope", "")
        # Ask for push and pull whatever the challenge names: uploads need both.
        name = scope.split(":")[1] if scope.count(":") >= 2 else ""
        query = {"service": params["service"], "scope": f"repository:{name}:pull,push"}
        headers = {"Authorization": self.basic} if self.basic else {}
        async with self.session.get(params["realm"], params=query, headers=headers) as response:
            assert response.status == 200, f"token server said {response.status}"
            token = (await response.json())["token"]
        self._header = f"Bearer {token}"

    async def blob(self, repo: str, data: bytes, *, chunked: bool = False) -> str:
        digest = sha256(data)
        status, _, _ = await self._request("HEAD", self.base / "v2" / repo / "blobs" / digest)
        if status == 200:
            return digest
        status, headers, body = await self._request("POST", self.base.with_path(f"/v2/{repo}/blobs/uploads/"))
        assert status == 202, f"upload start: {status} {body[:200]!r}"
        location = self.base.join(URL(headers["Location"], encoded=True))
        if chunked and data:
            step = max(1, len(data) // 3)
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                status, headers, body = await self._request(
                    "PATCH",
                    location,
                    data=piece,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + len(piece) - 1}",
                    },
                )
                assert status == 202, f"upload chunk: {status} {body[:200]!r}"
                location = self.base.join(URL(headers["Location"], encoded=True))
            data = b""
        status, _, body = await self._request(
            "PUT",
            location.update_query(digest=digest),
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 201, f"upload finish: {status} {body[:200]!r}"
        return digest

    async def manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        status, headers, answer = await self._request(
            "PUT",
            self.base.with_path(f"/v2/{repo}/manifests/{reference}"),
            data=body,
            headers={"Content-Type": media_type},
        )
        assert status == 201, f"manifest put: {status} {answer[:300]!r}"
        return headers.get("Docker-Content-Digest", sha256(body))

    async def image(self, repo: str, reference: str, image: BuiltImage, *, chunked: bool = False) -> str:
        for data in image.blobs.values():
            await self.blob(repo, data, chunked=chunked)
        return await self.manifest(repo, reference, image.manifest, image.media_type)


async def push(
    registry_url: str,
    repo: str,
    tag: str | None,
    image: BuiltImage | BuiltIndex,
    *,
    auth: tuple[str, str] | None = None,
    chunked: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Push `image` (and for an index every image it lists) to `repo`; tag it when `tag` is given.

    Returns the digest the tag now points to. Blobs go up in one PUT, or in three PATCHes with
    `chunked`.
    """
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context else None
    async with aiohttp.ClientSession(connector=connector) as session:
        pusher = Pusher(session, registry_url, auth)
        if isinstance(image, BuiltImage):
            return await pusher.image(repo, tag or image.digest, image, chunked=chunked)
        for child in image.manifests:
            await pusher.image(repo, child.digest, child, chunked=chunked)
        return await pusher.manifest(repo, tag or image.digest, image.body, image.media_type)


# ---------------------------------------------------------------------- local formats


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _write_all_blobs(root: Path, image: BuiltImage | BuiltIndex) -> None:
    images = (image,) if isinstance(image, BuiltImage) else image.manifests
    for one in images:
        for data in one.blobs.values():
            _write_blob(root, data)
        _write_blob(root, one.manifest)
    if isinstance(image, BuiltIndex):
        _write_blob(root, image.body)


def write_oci_layout(
    root: Path,
    *images: BuiltImage | BuiltIndex,
    names: Iterable[str | None] = (),
    platforms: bool = False,
) -> Path:
    """An OCI image layout at `root` holding `images`, each named by the matching entry of `names`
    (`org.opencontainers.image.ref.name`); with `platforms`, image entries carry their platform.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    name_list = list(names)
    entries = []
    for i, image in enumerate(images):
        _write_all_blobs(root, image)
        name = name_list[i] if i < len(name_list) else None
        annotations = {"org.opencontainers.image.ref.name": name} if name else None
        if isinstance(image, BuiltImage):
            entries.append(image.descriptor(platform=platforms, annotations=annotations))
        else:
            entries.append(image.descriptor(annotations=annotations))
    (root / "index.json").write_bytes(
        canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    )
    return root


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o644
    archive.addfile(info, io.BytesIO(data))


def write_docker_archive(
    path: Path,
    image: BuiltImage,
    *,
    repo_tags: Iterable[str] = (),
    oci_layout: bool = False,
    compressed_layers: bool = False,
    extra_images: Iterable[tuple[BuiltImage, Iterable[str]]] = (),
) -> Path:
    """A `docker save` tarball. Legacy layout by default (`<id>/layer.tar` uncompressed unless
    `compressed_layers`, `<hex>.json` config); with `oci_layout`, Docker 25+'s (blobs,
    index.json).
    """
    everything = [(image, list(repo_tags)), *((i, list(t)) for i, t in extra_images)]
    with tarfile.open(path, "w") as archive:
        manifest = []
        if oci_layout:
            seen: set[str] = set()
            index_entries = []
            for one, tags in everything:
                blobs = {**one.blobs, one.digest: one.manifest}
                for digest, data in blobs.items():
                    if digest not in seen:
                        seen.add(digest)
                        _add(archive, f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
                annotations = {}
                if tags:
                    annotations = {
                        "io.containerd.image.name": f"docker.io/library/{tags[0]}",
                        "org.opencontainers.image.ref.name": tags[0].rpartition(":")[2],
                    }
                index_entries.append(one.descriptor(platform=False, annotations=annotations))
                manifest.append(
                    {
                        "Config": f"blobs/sha256/{one.config_digest.removeprefix('sha256:')}",
                        "RepoTags": tags,
                        "Layers": [
                            f"blobs/sha256/{layer.digest.removeprefix('sha256:')}" for layer in one.layers
                        ],
                    }
                )
            _add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            _add(
                archive,
                "index.json",
                canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index_entries}),
            )
        else:
            for one, tags in everything:
                config_name = f"{one.config_digest.removeprefix('sha256:')}.json"
                _add(archive, config_name, one.config)
                layer_names = []
                for layer in one.layers:
                    layer_id = hashlib.sha256(layer.diff_id.encode() + one.config).hexdigest()
                    name = f"{layer_id}/layer.tar"
                    _add(archive, name, layer.data if compressed_layers else layer.tar)
                    layer_names.append(name)
                manifest.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
        _add(archive, "manifest.json", canonical_json(manifest))
    return path


class ZeroFile(io.RawIOBase):
    """`size` zero bytes, produced on demand (a bomb's payload is never held whole)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def gzip_bomb(size: int) -> bytes:
    """A gzip'd tar of one file of `size` zero bytes: a decompression bomb, built in constant memory."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, ZeroFile(size))
    return out.getvalue()
