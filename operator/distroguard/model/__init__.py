"""Types shared by every layer: pydantic models, the plain dataclasses of a Decision, and the one table of
workload kinds (`workloads.KINDS`) with the reader of their containers.

Pure: no I/O, nothing of ours imported but `errors`.

Each name is imported on first use (a module `__getattr__`, PEP 562): `from distroguard.model import
ImageFacts` loads the facts models alone, not the policy, exception and decision models and the building of
their schemas, which the command line's start-up would otherwise pay for every command. Type checkers read
the imports under TYPE_CHECKING as if they ran; a unit test holds `_HOMES` equal to them and to `__all__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES: dict[str, str] = {
    "ContainerVerdict": "distroguard.model.decision",
    "Decision": "distroguard.model.decision",
    "Finding": "distroguard.model.decision",
    "Severity": "distroguard.model.decision",
    "Verdict": "distroguard.model.decision",
    "Evidence": "distroguard.model.facts",
    "EvidenceSource": "distroguard.model.facts",
    "ImageFacts": "distroguard.model.facts",
    "Libc": "distroguard.model.facts",
    "LibcFamily": "distroguard.model.facts",
    "OSRelease": "distroguard.model.facts",
    "Runtime": "distroguard.model.facts",
    "ScanMode": "distroguard.model.facts",
    "CatalogSnapshot": "distroguard.model.lifecycle",
    "LifecycleLookup": "distroguard.model.lifecycle",
    "LifecycleMatch": "distroguard.model.lifecycle",
    "ProductLifecycle": "distroguard.model.lifecycle",
    "ReleaseCycle": "distroguard.model.lifecycle",
    "Platform": "distroguard.model.platform",
    "Action": "distroguard.model.policy",
    "DistroPolicy": "distroguard.model.policy",
    "Rule": "distroguard.model.policy",
    "UnresolvedAction": "distroguard.model.policy",
    "ImageRef": "distroguard.model.reference",
    "AdmissionRule": "distroguard.model.workloads",
    "Container": "distroguard.model.workloads",
    "KINDS": "distroguard.model.workloads",
    "WorkloadKind": "distroguard.model.workloads",
    "containers_of": "distroguard.model.workloads",
}
"""Each exported name -> the module that defines it."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


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
