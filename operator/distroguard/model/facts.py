"""What distroguard learns about an image, with the evidence for every fact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LibcFamily = Literal["glibc", "musl", "none", "unknown"]
ScanMode = Literal["fast", "runtimes", "thorough"]
"""fast: the bottom layers, until OS and C library are decided; runtimes: as fast, then on up (bounded)
until a runtime is found, for policies that judge runtimes the config does not announce; thorough: all."""
EvidenceSource = Literal["file", "package-db", "config", "table", "scan"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OSRelease(_Frozen):
    """The distribution, in os-release terms (`ID`, `VERSION_ID`, ...), whatever file it came from."""

    id: str
    version_id: str | None = None
    codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


class Libc(_Frozen):
    family: LibcFamily = "unknown"
    version: str | None = None


class Runtime(_Frozen):
    name: str
    version: str


class Evidence(_Frozen):
    """Why distroguard believes a fact: which file in which layer, which config field, or which table."""

    fact: str = Field(
        description="the fact this supports, e.g. 'os', 'libc', 'libc.version', 'runtime.python'"
    )
    source: EvidenceSource
    path: str | None = Field(default=None, description="file path in the image, or config field name")
    layer: str | None = Field(default=None, description="digest of the layer the file came from")
    detail: str = ""


BaseHow = Literal["annotation", "known-base"]


class BaseImage(_Frozen):
    """The image this one is built on, when it can be shown: its layers start with the base's layers."""

    reference: str = Field(description="the base image as named, e.g. python:3.8-slim-buster")
    digest: str | None = Field(default=None, description="the base's digest, when known")
    how: BaseHow = Field(
        description="annotation: the image's org.opencontainers.image.base.name (and .digest) annotation; "
        "known-base: an image resolved before whose layers are the first of this one's"
    )
    verified: bool | None = Field(
        default=True,
        description="true: the base's layers (diff_ids) are the first of this image's; false: they are "
        "not (a false claim); null: the claim could not be checked (the base could not be read)",
    )
    detail: str = ""

    def __str__(self) -> str:
        return self.reference


class ImageFacts(_Frozen):
    """Everything distroguard resolved about one image (one platform of it)."""

    reference: str
    digest: str | None = None
    platform: str = "linux/amd64"
    manifest_digest: str | None = None
    """The digest of this platform's own manifest (`digest` names the index, for a multi-platform image):
    what the facts are cached under."""
    os: OSRelease | None = None
    libc: Libc = Libc()
    runtimes: tuple[Runtime, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    bytes_fetched: int = 0
    image_size: int = 0
    mode: ScanMode = "fast"
    base: BaseImage | None = None
    chain: str | None = None
    """A key of the image's layers (sha256 of its diff_ids in order): how images built on this one find it
    as their base (`resolver.bases`)."""


@dataclass(frozen=True, slots=True)
class ImagePlatforms:
    """An image judged on several platforms: what it offers, and the facts of each platform judged.

    `facts` holds one entry per platform that was both wanted and offered, in the order the image lists
    them; it is empty when the image offers none of the wanted platforms, except for a single-platform
    image, whose one platform's facts are always there (they were needed to learn its platform)."""

    offered: tuple[str, ...]
    """The runnable platforms the image offers (attestations left out), at most `MAX_PLATFORMS`."""
    facts: tuple[ImageFacts, ...]
    single: bool = False
    """A single manifest rather than an index."""
    _distinct: list[tuple[ImageFacts, ...]] = field(default_factory=list, compare=False, repr=False)

    def distinct(self) -> tuple[ImageFacts, ...]:
        """`facts` with those that agree (same OS, C library and runtimes) given once, by the one of the
        largest image (so that a size rule sees the worst); computed once."""
        if not self._distinct:
            # Compared in pairs, not hashed: a few platforms, and hashing the models costs more.
            variants: list[ImageFacts] = []
            for item in self.facts:
                for index, kept in enumerate(variants):
                    if item.os == kept.os and item.libc == kept.libc and item.runtimes == kept.runtimes:
                        if item.image_size > kept.image_size:
                            variants[index] = item
                        break
                else:
                    variants.append(item)
            self._distinct.append(tuple(variants))
        return self._distinct[0]

    def judged(self, wanted: tuple[str, ...] | None = None) -> tuple[ImageFacts, ...]:
        """The facts of the platforms judged (`wanted` given: only those whose platform it lists)."""
        if wanted is None:
            return self.facts
        return tuple(f for f in self.facts if f.platform in wanted)
