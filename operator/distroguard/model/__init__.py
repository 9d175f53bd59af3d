"""Pydantic types shared by every layer. Pure: no I/O, nothing of ours imported but `errors`."""

from distroguard.model.facts import (
    Evidence,
    EvidenceSource,
    ImageFacts,
    Libc,
    LibcFamily,
    OSRelease,
    Runtime,
    ScanMode,
)
from distroguard.model.platform import Platform
from distroguard.model.reference import ImageRef

__all__ = [
    "Evidence",
    "EvidenceSource",
    "ImageFacts",
    "ImageRef",
    "Libc",
    "LibcFamily",
    "OSRelease",
    "Platform",
    "Runtime",
    "ScanMode",
]
