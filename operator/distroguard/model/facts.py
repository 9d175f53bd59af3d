"""What distroguard learns about an image, with the evidence for every fact."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LibcFamily = Literal["glibc", "musl", "none", "unknown"]
ScanMode = Literal["fast", "thorough"]
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


class ImageFacts(_Frozen):
    """Everything distroguard resolved about one image (one platform of it)."""

    reference: str
    digest: str | None = None
    platform: str = "linux/amd64"
    os: OSRelease | None = None
    libc: Libc = Libc()
    runtimes: tuple[Runtime, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    bytes_fetched: int = 0
    image_size: int = 0
    mode: ScanMode = "fast"
