"""Types shared by every layer: pydantic models, the plain dataclasses of a Decision, and the one table of
workload kinds (`workloads.KINDS`) with the reader of their containers.

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
from distroguard.model.workloads import (
    KINDS,
    AdmissionRule,
    Container,
    WorkloadKind,
    containers_of,
)

__all__ = [
    "KINDS",
    "Action",
    "AdmissionRule",
    "CatalogSnapshot",
    "Container",
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
    "WorkloadKind",
    "containers_of",
]
