"""Types shared by every layer: pydantic models, and the plain dataclasses of a Decision.

Pure: no I/O, nothing of ours imported but `errors`.
"""

from distroguard.model.decision import ContainerVerdict, Decision, Finding, Severity, Verdict
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
from distroguard.model.lifecycle import (
    CatalogSnapshot,
    LifecycleLookup,
    LifecycleMatch,
    ProductLifecycle,
    ReleaseCycle,
)
from distroguard.model.platform import Platform
from distroguard.model.policy import Action, DistroPolicy, Rule, UnresolvedAction
from distroguard.model.reference import ImageRef

__all__ = [
    "Action",
    "CatalogSnapshot",
    "ContainerVerdict",
    "Decision",
    "DistroPolicy",
    "Evidence",
    "EvidenceSource",
    "Finding",
    "ImageFacts",
    "ImageRef",
    "Libc",
    "LibcFamily",
    "LifecycleLookup",
    "LifecycleMatch",
    "OSRelease",
    "Platform",
    "ProductLifecycle",
    "ReleaseCycle",
    "Rule",
    "Runtime",
    "ScanMode",
    "Severity",
    "UnresolvedAction",
    "Verdict",
]
