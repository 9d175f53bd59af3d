"""Manifests, indexes and image configs: parsed from bytes, validated, bounded. Pure: no I/O.

Wire formats are read defensively: every field is checked for type and range, every digest for form,
and every list for length, so that a hostile registry can cost us at most one bounded body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distroguard.errors import (
    PlatformNotFound,
    ScanLimitExceeded,
    SourceError,
    UnsupportedMediaType,
)
from distroguard.model import Platform
from distroguard.registry import mediatypes as mt
from distroguard.registry.digest import (
    DigestVerifier,
    check_digest,
    digest_of,
    is_digest,
    verify_digest,
)
from distroguard.registry.foreign import unexpected
from distroguard.registry.meter import ByteMeter

__all__ = [
    "ATTESTATION_REFERENCE_TYPE",
    "MAX_ANNOTATIONS",
    "MAX_CONFIG_LIST",
    "MAX_INDEX_ENTRIES",
    "MAX_LAYERS",
    "ByteMeter",
    "Descriptor",
    "DigestVerifier",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "check_digest",
    "digest_of",
    "is_attestation",
    "is_digest",
    "manifest_media_type",
    "parse_config",
    "parse_manifest",
    "runnable_entries",
    "select_entries",
    "select_platform",
    "verify_digest",
]

#: Entries one image index may list (real ones list a few dozen platforms and attestations; each
#: entry costs a parsed descriptor, and a PlatformNotFound lists them all).
MAX_INDEX_ENTRIES = 1_000
#: Layers one manifest may list (Docker itself stops at 127).
MAX_LAYERS = 10_000
#: Annotations one descriptor or manifest may carry.
MAX_ANNOTATIONS = 1_000
#: Entries of each list in an image config (Env, history, diff_ids).
MAX_CONFIG_LIST = 10_000

#: `vnd.docker.reference.type` value BuildKit gives the provenance/SBOM entries of an index.
ATTESTATION_REFERENCE_TYPE = "attestation-manifest"
_UNKNOWN_PLATFORM = Platform(os="unknown", architecture="unknown")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to content: its media type, digest and size, and for index entries the platform."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """An OCI image index or a Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """An OCI image manifest or a Docker v2 schema 2 manifest."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image config distroguard reads."""

    os: str
    architecture: str
    variant: str | None
    env: tuple[str, ...]
    labels: dict[str, str]
    diff_ids: tuple[str, ...]
    history_created_by: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""

    @property
    def platform(self) -> Platform | None:
        """The platform the config declares, or None when it declares none (artifacts, odd
        builders).
        """
        if not self.os or not self.architecture:
            return None
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant or None)


#: Operating systems and architectures an image platform may name (Go's GOOS and GOARCH values, which
#: the OCI image spec refers to), and the variants of the spec's table and of amd64 levels.
KNOWN_OS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    }
)
KNOWN_ARCHITECTURES = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "arm64",
        "arm64be",
        "armbe",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "mipsle",
        "ppc",
        "ppc64",
        "ppc64le",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)
KNOWN_VARIANTS = frozenset({"v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"})


def recognised_platform(os_name: str, architecture: str, variant: str | None) -> bool:
    """Whether a platform is one a runtime could run: known os, architecture and variant (or none)."""
    return (
        os_name in KNOWN_OS
        and architecture in KNOWN_ARCHITECTURES
        and (variant is None or variant in KNOWN_VARIANTS)
    )


# ---------------------------------------------------------------- field readers


def _load_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SourceError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _string(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        problem = "missing" if value is None else f"must be a non-empty string, got {unexpected(value)}"
        raise SourceError(f"{where}.{key}: {problem}")
    return value


def _size(obj: Mapping[str, Any], where: str) -> int:
    value = obj.get("size")
    # bool is an int subclass; JSON true is no size.
    if not isinstance(value, int) or isinstance(value, bool):
        problem = "missing" if value is None else f"must be an integer, got {unexpected(value)}"
        raise SourceError(f"{where}.size: {problem}")
    if value < 0:
        raise SourceError(f"{where}.size: must not be negative, got {value}")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str, limit: int, bound: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SourceError(f"{where}.{key}: expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise ScanLimitExceeded(bound, limit, f"{where}.{key} has {len(value)} entries")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceError(f"{where}: expected an object of strings, got {type(value).__name__}")
    if len(value) > MAX_ANNOTATIONS:
        raise ScanLimitExceeded("MAX_ANNOTATIONS", MAX_ANNOTATIONS, f"{where} has {len(value)}")
    for item in value.values():
        if not isinstance(item, str):
            raise SourceError(f"{where}: expected strings, got {type(item).__name__}")
    return dict(value)


def _platform(value: Any, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SourceError(f"{where}: expected an object, got {type(value).__name__}")
    os_name = _string(value, "os", where)
    arch = _string(value, "architecture", where)
    variant = _string(value, "variant", where, required=False) or None
    if not recognised_platform(os_name, arch, variant):
        # A platform no runtime knows runs nothing; kept as `unknown/unknown`, like an attestation's, so
        # that a registry's own words never reach a list of what an image offers.
        return _UNKNOWN_PLATFORM
    return Platform(os=os_name, architecture=arch, variant=variant)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise SourceError(f"{where}: expected a descriptor object, got {type(value).__name__}")
    urls = _list(value, "urls", where, MAX_ANNOTATIONS, "MAX_ANNOTATIONS")
    if not all(isinstance(url, str) for url in urls):
        raise SourceError(f"{where}.urls: expected a list of strings")
    return Descriptor(
        media_type=_string(value, "mediaType", where),
        digest=check_digest(value.get("digest"), f"{where}.digest"),
        size=_size(value, where),
        platform=_platform(value.get("platform"), f"{where}.platform"),
        annotations=_string_map(value.get("annotations"), f"{where}.annotations"),
        urls=tuple(urls),
    )


# ---------------------------------------------------------------- manifests


def manifest_media_type(header_type: str | None, data: Mapping[str, Any], what: str) -> str:
    """The media type of a manifest body: the header's, unless generic; then the body's, or its
    shape's.

    A body whose own `mediaType` contradicts a specific header is refused: the OCI spec requires
    them to agree, and a disagreement means someone is confused about what they serve.
    """
    header = mt.base_type(header_type)
    declared = data.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise SourceError(f"{what}.mediaType: expected a string, got {type(declared).__name__}")
    if data.get("schemaVersion") == 1 or header in mt.SCHEMA1_TYPES or declared in mt.SCHEMA1_TYPES:
        raise UnsupportedMediaType(
            f"{what}: Docker image manifest schema 1 is deprecated and not supported; "
            "push the image again with a current client (schema 2 or OCI)"
        )
    if header and header not in mt.GENERIC_TYPES:
        if declared and declared != header:
            raise SourceError(
                f"{what}: served as {mt.shown(header)} but its mediaType says {mt.shown(declared)}"
            )
        return header
    if declared:
        return declared
    # An OCI manifest may omit mediaType; its shape tells an index from a manifest.
    if "manifests" in data:
        return mt.OCI_INDEX
    if "config" in data and "layers" in data:
        return mt.OCI_MANIFEST
    raise SourceError(f"{what}: cannot tell the manifest format (no media type and no known shape)")


def parse_manifest(media_type: str | None, body: bytes, what: str = "manifest") -> ImageIndex | ImageManifest:
    """Parse an index or a manifest. `media_type` is the Content-Type it was served with (or
    None).
    """
    data = _load_object(body, what)
    kind = manifest_media_type(media_type, data, what)
    if kind not in mt.INDEX_TYPES and kind not in mt.MANIFEST_TYPES:
        raise UnsupportedMediaType(f"{what}: media type {mt.shown(kind)} is not an image manifest or index")
    schema = data.get("schemaVersion")
    if schema != 2:
        shown = schema if isinstance(schema, int) and not isinstance(schema, bool) else unexpected(schema)
        raise SourceError(f"{what}.schemaVersion: expected 2, got {shown}")
    annotations = _string_map(data.get("annotations"), f"{what}.annotations")
    if kind in mt.INDEX_TYPES:
        entries = _list(data, "manifests", what, MAX_INDEX_ENTRIES, "MAX_INDEX_ENTRIES")
        if "manifests" not in data:
            raise SourceError(f"{what}.manifests: missing")
        return ImageIndex(
            media_type=kind,
            manifests=tuple(_descriptor(item, f"{what}.manifests[{i}]") for i, item in enumerate(entries)),
            annotations=annotations,
        )
    if "config" not in data:
        raise SourceError(f"{what}.config: missing")
    if "layers" not in data:
        raise SourceError(f"{what}.layers: missing")
    layers = _list(data, "layers", what, MAX_LAYERS, "MAX_LAYERS")
    return ImageManifest(
        media_type=kind,
        config=_descriptor(data["config"], f"{what}.config"),
        layers=tuple(_descriptor(item, f"{what}.layers[{i}]") for i, item in enumerate(layers)),
        annotations=annotations,
    )


# ---------------------------------------------------------------- config


def _strings(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(obj, key, where, MAX_CONFIG_LIST, "MAX_CONFIG_LIST")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SourceError(f"{where}.{key}[{i}]: expected a string, got {type(item).__name__}")
    return tuple(items)


def _argv(value: object) -> tuple[str, ...]:
    """Entrypoint or Cmd: only a hint of where the image's program is, so a malformed one is no error (the
    facts do not depend on it): none."""
    if not isinstance(value, list) or len(value) > MAX_CONFIG_LIST:
        return ()
    return tuple(value) if all(isinstance(item, str) for item in value) else ()


def _optional_string(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= 4096 else ""


def parse_config(body: bytes, what: str = "image config") -> ImageConfig:
    """Parse an OCI or Docker image config (the blob the manifest's `config` names)."""
    data = _load_object(body, what)
    container = data.get("config")
    if container is None:
        container = {}
    if not isinstance(container, dict):
        raise SourceError(f"{what}.config: expected an object, got {type(container).__name__}")
    rootfs = data.get("rootfs")
    if rootfs is None:
        rootfs = {}
    if not isinstance(rootfs, dict):
        raise SourceError(f"{what}.rootfs: expected an object, got {type(rootfs).__name__}")
    diff_ids = _strings(rootfs, "diff_ids", f"{what}.rootfs")
    for i, diff_id in enumerate(diff_ids):
        check_digest(diff_id, f"{what}.rootfs.diff_ids[{i}]")
    history = _list(data, "history", what, MAX_CONFIG_LIST, "MAX_CONFIG_LIST")
    created_by: list[str] = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise SourceError(f"{what}.history[{i}]: expected an object")
        created_by.append(_string(entry, "created_by", f"{what}.history[{i}]", required=False))
    os_name = _string(data, "os", what, required=False)
    arch = _string(data, "architecture", what, required=False)
    variant = _string(data, "variant", what, required=False) or None
    if not recognised_platform(os_name, arch, variant):
        os_name, arch, variant = "", "", None  # declares no platform we know: as one that declares none
    return ImageConfig(
        os=os_name,
        architecture=arch,
        variant=variant,
        env=_strings(container, "Env", f"{what}.config"),
        labels=_string_map(container.get("Labels"), f"{what}.config.Labels"),
        diff_ids=diff_ids,
        history_created_by=tuple(created_by),
        entrypoint=_argv(container.get("Entrypoint")),
        cmd=_argv(container.get("Cmd")),
        working_dir=_optional_string(container.get("WorkingDir")),
    )


# ---------------------------------------------------------------- platform selection


def is_attestation(desc: Descriptor) -> bool:
    """Whether an index entry is a build attestation (provenance, SBOM) rather than a runnable
    image.
    """
    if desc.annotations.get("vnd.docker.reference.type") == ATTESTATION_REFERENCE_TYPE:
        return True
    return desc.platform == _UNKNOWN_PLATFORM


def select_platform(index: ImageIndex, wanted: Platform, what: str = "image index") -> Descriptor:
    """The entry of `index` that runs on `wanted`; PlatformNotFound (listing the choices) if none
    does.

    Among several matches the one whose variant equals the wanted one (or the architecture's
    default) wins, then the first listed, the order containerd follows. Entries without a platform
    are never guessed at.
    """
    candidates: list[Descriptor] = []
    available: list[str] = []
    for desc in index.manifests:
        if is_attestation(desc):
            continue
        if desc.platform is None:
            available.append("unspecified")
            continue
        available.append(str(desc.platform))
        if desc.media_type in mt.SCHEMA1_TYPES:
            continue
        if wanted.matches(desc.platform):
            candidates.append(desc)
    if not candidates:
        raise PlatformNotFound(str(wanted), available)
    if wanted.variant is None:
        # `linux/arm` asked: prefer the architecture's default variant (v7) over whatever is listed
        # first.
        preferred = [d for d in candidates if d.platform is not None and _default_variant(d.platform)]
        candidates = preferred or candidates
    return candidates[0]


def runnable_entries(index: ImageIndex) -> tuple[Descriptor, ...]:
    """The entries of `index` a container can run from, in the order listed: each names its platform, is
    no attestation (provenance, SBOM, `unknown/unknown`) and no schema 1 manifest."""
    return tuple(
        desc
        for desc in index.manifests
        if desc.platform is not None and not is_attestation(desc) and desc.media_type not in mt.SCHEMA1_TYPES
    )


def select_entries(
    entries: Sequence[Descriptor], wanted: Sequence[Platform] | None
) -> tuple[Descriptor, ...]:
    """The entries (of `runnable_entries`) to judge for `wanted` (None: all of them): for each wanted
    platform the entry `select_platform` would pick, without repeats, in the order of `entries`."""
    if wanted is None:
        return tuple(entries)
    chosen: set[str] = set()
    for platform in wanted:
        candidates = [d for d in entries if d.platform is not None and platform.matches(d.platform)]
        if platform.variant is None:
            preferred = [d for d in candidates if d.platform is not None and _default_variant(d.platform)]
            candidates = preferred or candidates
        if candidates:
            chosen.add(candidates[0].digest)
    return tuple(d for d in entries if d.digest in chosen)


def _default_variant(platform: Platform) -> bool:
    """Whether `platform` has no variant or its architecture's default (arm64 → v8, arm → v7)."""
    bare = Platform(os=platform.os, architecture=platform.architecture)
    return platform.variant is None or platform.matches(bare)
