"""Multi-architecture images the tests build and push: the shapes real registries serve.

- `mixed()`: one tag, Debian 12 (glibc) on linux/amd64 and Alpine (musl) on linux/arm64, as a Python
  image's tag can be when its variants are built from different bases.
- `arm64_only()`: an index listing linux/arm64 alone.
- `arm_v7()`: linux/amd64 and linux/arm/v7 (a variant), Debian on both.
- `with_attestations()`: `mixed()`'s images with a BuildKit attestation (`unknown/unknown`) per image.
- `many_platforms(n)`: an index of `n` distinct platforms (the bound on what is judged).
"""

from __future__ import annotations

from distroguard.registry.manifest import KNOWN_ARCHITECTURES
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT, ELF
from support.images import BuiltImage, BuiltIndex, ImageBuilder, build_index

PYTHON_VERSION = "3.12.8"


def python_on(root: dict[str, object], platform: str, version: str = PYTHON_VERSION) -> BuiltImage:
    """A Python image of `platform` on `root` (a distribution's files)."""
    return (
        ImageBuilder(platform=platform)
        .layer(root)  # type: ignore[arg-type]
        .layer({"usr/local/bin/python3.12": ELF})
        .env(f"PYTHON_VERSION={version}")
        .build()
    )


def debian(platform: str) -> BuiltImage:
    return python_on(DEBIAN_12_ROOT, platform)  # type: ignore[arg-type]


def alpine(platform: str) -> BuiltImage:
    return python_on(ALPINE_ROOT, platform)  # type: ignore[arg-type]


def mixed() -> BuiltIndex:
    return build_index([debian("linux/amd64"), alpine("linux/arm64")])


def arm64_only() -> BuiltIndex:
    return build_index([alpine("linux/arm64")])


def arm_v7() -> BuiltIndex:
    return build_index([debian("linux/amd64"), debian("linux/arm/v7")])


def with_attestations() -> BuiltIndex:
    return build_index([debian("linux/amd64"), alpine("linux/arm64")], attestations=True)


def many_platforms(count: int) -> BuiltIndex:
    """`count` platforms (linux/amd64, then the other architectures a runtime knows, in order), Debian on
    each (at most as many as there are architectures)."""
    others = sorted(KNOWN_ARCHITECTURES - {"amd64"})
    platforms = ["linux/amd64", *(f"linux/{arch}" for arch in others[: count - 1])]
    return build_index([debian(p) for p in platforms])
