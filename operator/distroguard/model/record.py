"""ImageFacts objects: the cluster's image inventory, and the cache every webhook replica shares.

One cluster-scoped `ImageFacts` object (`distroguard.dev/v1alpha1`) per image digest, written by
the one audit writer and watched by every webhook replica. Its `spec` is `FactsRecord`: the facts, the
references seen resolving to it, and its EOL state when written. `python -m codegen.crds` turns this
model into the CRD's schema, printer columns included.

Bounded, because etcd holds it: at most `MAX_REFERENCES` references (the most recently seen kept),
`MAX_EVIDENCE` evidence items, `MAX_TEXT` characters in any free text.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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

MAX_REFERENCES = 32
MAX_EVIDENCE = 32
MAX_RUNTIMES = 16
MAX_TEXT = 512
"""Characters kept of any free text (a detail, a pretty name, a reference)."""

Access = Literal["public", "private"]
EolState = Literal["active", "security", "extended", "eol", "rolling", "unknown", "no-os"]
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:MAX_TEXT]


class _Record(BaseModel):
    # Objects written by a newer distroguard may carry fields this one does not know: ignored on read.
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)


class RecordOS(_Record):
    """The distribution, in os-release terms."""

    id: str
    version_id: str | None = None
    codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


class RecordLibc(_Record):
    family: LibcFamily = "unknown"
    version: str | None = None


class RecordRuntime(_Record):
    name: str
    version: str


class RecordEol(_Record):
    """The distribution release's support, from the EOL catalog when the object was written."""

    state: EolState = Field(
        description="active, security (regular security support only), extended (paid or LTS support "
        "only), eol, rolling (never EOL by date), unknown (product or release not in the catalog), no-os"
    )
    date: str | None = Field(default=None, description="end of regular security support (YYYY-MM-DD)")
    extended_until: str | None = Field(default=None, description="end of extended support (YYYY-MM-DD)")
    subject: str | None = Field(
        default=None, description="the release looked up, e.g. 'Debian 12 (bookworm)'"
    )


class RecordEvidence(_Record):
    """Why a fact is believed: which file in which layer, which config field, or which table."""

    fact: str
    source: EvidenceSource
    path: str | None = None
    layer: str | None = None
    detail: str = ""


class RecordReference(_Record):
    """An image reference seen resolving to this digest."""

    image: str
    digest: str | None = Field(
        default=None,
        description="the digest the reference resolved to",
    )
    observed_at: datetime = Field(description="when the reference was last resolved to `digest`")


class FactsRecord(_Record):
    """The `spec` of an ImageFacts object."""

    digest: str = Field(
        description="the image's digest (its index's, for a multi-platform image)", pattern=_DIGEST.pattern
    )
    platform: str = Field(description="the platform these facts are of, e.g. linux/amd64")
    mode: ScanMode = "fast"
    access: Access = Field(
        default="public",
        description="public: resolved without credentials, and served to every namespace from the shared "
        "cache; private: resolved with a namespace's pull secrets, an inventory entry only",
    )
    references: tuple[RecordReference, ...] = Field(default=(), max_length=MAX_REFERENCES)
    image: str = Field(description="the most recently seen reference, for `kubectl get`")
    os: RecordOS | None = Field(default=None, description="null: no OS (scratch, static binaries)")
    libc: RecordLibc = RecordLibc()
    runtimes: tuple[RecordRuntime, ...] = Field(default=(), max_length=MAX_RUNTIMES)
    eol: RecordEol | None = None
    evidence: tuple[RecordEvidence, ...] = Field(default=(), max_length=MAX_EVIDENCE)
    image_size: int = 0
    resolved_at: datetime = Field(description="when the image was read from its registry")
    last_seen: datetime = Field(description="when a workload last used it (unused objects are deleted)")

    def facts(self, reference: str | None = None) -> ImageFacts:
        """The facts as the resolver caches them, as asked for by `reference`."""
        os = self.os
        return ImageFacts(
            reference=reference or self.image,
            digest=self.digest,
            platform=self.platform,
            os=None
            if os is None
            else OSRelease(
                id=os.id,
                version_id=os.version_id,
                codename=os.codename,
                pretty_name=os.pretty_name,
                id_like=os.id_like,
            ),
            libc=Libc(family=self.libc.family, version=self.libc.version),
            runtimes=tuple(Runtime(name=r.name, version=r.version) for r in self.runtimes),
            evidence=tuple(
                Evidence(fact=e.fact, source=e.source, path=e.path, layer=e.layer, detail=e.detail)
                for e in self.evidence
            ),
            image_size=self.image_size,
            mode=self.mode,
        )


def object_name(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>`: a valid object name, one per image digest."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-", 1)


def record_of(
    facts: ImageFacts,
    *,
    references: tuple[RecordReference, ...],
    access: Access,
    eol: RecordEol | None,
    resolved_at: datetime,
    last_seen: datetime,
) -> FactsRecord:
    """The record of `facts` (which must carry a digest), bounded: the most recent references kept."""
    if facts.digest is None:
        raise ValueError(f"{facts.reference}: facts without a digest cannot be recorded")
    kept = sorted(references, key=lambda r: r.observed_at, reverse=True)[:MAX_REFERENCES]
    os = facts.os
    return FactsRecord(
        digest=facts.digest,
        platform=facts.platform or "",
        mode=facts.mode,
        access=access,
        references=tuple(
            RecordReference(image=str(_cut(r.image)), digest=r.digest, observed_at=r.observed_at)
            for r in kept
        ),
        image=str(_cut(kept[0].image if kept else facts.reference)),
        os=None
        if os is None
        else RecordOS(
            id=str(_cut(os.id)),
            version_id=_cut(os.version_id),
            codename=_cut(os.codename),
            pretty_name=_cut(os.pretty_name),
            id_like=tuple(str(_cut(i)) for i in os.id_like[:8]),
        ),
        libc=RecordLibc(family=facts.libc.family, version=_cut(facts.libc.version)),
        runtimes=tuple(
            RecordRuntime(name=str(_cut(r.name)), version=str(_cut(r.version)))
            for r in facts.runtimes[:MAX_RUNTIMES]
        ),
        eol=eol,
        evidence=tuple(
            RecordEvidence(
                fact=str(_cut(e.fact)),
                source=e.source,
                path=_cut(e.path),
                layer=e.layer,
                detail=str(_cut(e.detail)),
            )
            for e in facts.evidence[:MAX_EVIDENCE]
        ),
        image_size=facts.image_size,
        resolved_at=resolved_at,
        last_seen=last_seen,
    )
