"""ImageFacts objects: the cluster's image inventory, and the cache every webhook replica shares.

One cluster-scoped `ImageFacts` object (`distroguard.dev/v1alpha1`) per image digest (an index's, for a
multi-platform image), written by the one audit writer and watched by every webhook replica. Its `spec` is
`FactsRecord`: what the image offers (each platform's manifest), the facts of each platform judged with
its EOL state when written, and the references seen resolving to it; a replica seeds both the resolver's
`offers` and `facts` tiers from it, so that it answers a known image without asking its registry.
`python -m codegen.crds` turns this model into the CRD's schema, printer columns included.

Bounded, because etcd holds it: at most `MAX_REFERENCES` references (the most recently seen kept),
`MAX_PLATFORMS` platforms, `MAX_EVIDENCE` evidence items per platform, `MAX_TEXT` characters in any free
text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from distroguard.model.facts import (
    BaseHow,
    BaseImage,
    Evidence,
    EvidenceSource,
    ImageFacts,
    Libc,
    LibcFamily,
    OSRelease,
    Runtime,
    ScanMode,
)
from distroguard.model.platform import MAX_PLATFORMS

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


class RecordOffer(_Record):
    """A platform the image offers: the manifest an index lists for it, or the image's one manifest."""

    platform: str | None = Field(
        default=None, description="os/architecture[/variant]; null when a lone manifest's config names none"
    )
    digest: str = Field(description="the digest of the platform's manifest", pattern=_DIGEST.pattern)
    size: int = Field(description="the manifest's size in bytes")
    media_type: str = Field(description="the manifest's media type")


class RecordBase(_Record):
    """The image this platform's image is built on (see ImageFacts.base)."""

    reference: str = Field(max_length=MAX_TEXT)
    digest: str | None = Field(default=None, max_length=200)
    how: BaseHow
    verified: bool | None = True


class RecordPlatform(_Record):
    """The facts of one platform judged."""

    platform: str = Field(description="the platform these facts are of, e.g. linux/arm64")
    manifest_digest: str | None = Field(
        default=None, description="the digest of the platform's own manifest, the facts' cache key"
    )
    os: RecordOS | None = Field(default=None, description="null: no OS (scratch, static binaries)")
    libc: RecordLibc = RecordLibc()
    runtimes: tuple[RecordRuntime, ...] = Field(default=(), max_length=MAX_RUNTIMES)
    eol: RecordEol | None = None
    evidence: tuple[RecordEvidence, ...] = Field(default=(), max_length=MAX_EVIDENCE)
    image_size: int = 0
    base: RecordBase | None = Field(default=None, description="the image it is built on, when shown")
    chain: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of its layers' diff_ids: replicas learn it as a base of the images built on it",
    )


class FactsRecord(_Record):
    """The `spec` of an ImageFacts object."""

    digest: str = Field(
        description="the image's digest (its index's, for a multi-platform image)", pattern=_DIGEST.pattern
    )
    mode: ScanMode = "fast"
    access: Access = Field(
        default="public",
        description="public: resolved without credentials, and served to every namespace from the shared "
        "cache; private: resolved with a namespace's pull secrets, an inventory entry only",
    )
    references: tuple[RecordReference, ...] = Field(default=(), max_length=MAX_REFERENCES)
    image: str = Field(description="the most recently seen reference, for `kubectl get`")
    single: bool = Field(
        default=False, description="a single manifest (judged on its one platform), not an index"
    )
    offers: tuple[RecordOffer, ...] = Field(
        default=(),
        max_length=MAX_PLATFORMS,
        description="the platforms the image offers (attestations left out), in the order it lists them",
    )
    platforms: tuple[RecordPlatform, ...] = Field(
        default=(),
        max_length=MAX_PLATFORMS,
        description="the facts of each platform judged (those of the cluster's nodes that it offers), "
        "sorted by platform",
    )
    judged_on: str = Field(
        default="",
        max_length=MAX_TEXT,
        description="the platforms judged, comma-separated (what `kubectl get` lists: a printer column "
        "shows one value of a list)",
    )
    resolved_at: datetime = Field(description="when the image was read from its registry")
    last_seen: datetime = Field(description="when a workload last used it (unused objects are deleted)")

    def facts(self, reference: str | None = None) -> tuple[ImageFacts, ...]:
        """Each platform's facts as the resolver caches them, as asked for by `reference`."""
        return tuple(_facts_of(self, p, reference or self.image) for p in self.platforms)


def _facts_of(record: FactsRecord, found: RecordPlatform, reference: str) -> ImageFacts:
    os = found.os
    return ImageFacts(
        reference=reference,
        digest=record.digest,
        platform=found.platform,
        manifest_digest=found.manifest_digest,
        os=None
        if os is None
        else OSRelease(
            id=os.id,
            version_id=os.version_id,
            codename=os.codename,
            pretty_name=os.pretty_name,
            id_like=os.id_like,
        ),
        libc=Libc(family=found.libc.family, version=found.libc.version),
        runtimes=tuple(Runtime(name=r.name, version=r.version) for r in found.runtimes),
        evidence=tuple(
            Evidence(fact=e.fact, source=e.source, path=e.path, layer=e.layer, detail=e.detail)
            for e in found.evidence
        ),
        image_size=found.image_size,
        mode=record.mode,
        base=None
        if found.base is None
        else BaseImage(
            reference=found.base.reference,
            digest=found.base.digest,
            how=found.base.how,
            verified=found.base.verified,
        ),
        chain=found.chain,
    )


def object_name(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>`: a valid object name, one per image digest."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-", 1)


def record_of(
    digest: str,
    platforms: Sequence[tuple[ImageFacts, RecordEol | None]],
    *,
    offers: tuple[RecordOffer, ...],
    single: bool,
    references: tuple[RecordReference, ...],
    access: Access,
    resolved_at: datetime,
    last_seen: datetime,
) -> FactsRecord:
    """The record of an image (`digest`: what its references name) judged on `platforms` (each platform's
    facts, with its EOL state), bounded: the most recent references kept, the first platforms."""
    kept = sorted(references, key=lambda r: r.observed_at, reverse=True)[:MAX_REFERENCES]
    first = platforms[0][0].reference if platforms else ""
    judged = sorted_platforms(platform_of(facts, eol) for facts, eol in platforms)
    return FactsRecord(
        digest=digest,
        mode=platforms[0][0].mode if platforms else "fast",
        access=access,
        references=tuple(
            RecordReference(image=str(_cut(r.image)), digest=r.digest, observed_at=r.observed_at)
            for r in kept
        ),
        image=str(_cut(kept[0].image if kept else first)),
        single=single,
        offers=offers[:MAX_PLATFORMS],
        platforms=judged,
        judged_on=judged_on(judged),
        resolved_at=resolved_at,
        last_seen=last_seen,
    )


def sorted_platforms(platforms: Iterable[RecordPlatform]) -> tuple[RecordPlatform, ...]:
    """Each platform once (the first given wins), sorted by name, at most `MAX_PLATFORMS`."""
    found: dict[str, RecordPlatform] = {}
    for item in platforms:
        found.setdefault(item.platform, item)
    return tuple(found[name] for name in sorted(found))[:MAX_PLATFORMS]


def judged_on(platforms: Iterable[RecordPlatform]) -> str:
    return str(_cut(",".join(p.platform for p in platforms)))


def platform_of(facts: ImageFacts, eol: RecordEol | None) -> RecordPlatform:
    """One platform's facts, bounded."""
    os = facts.os
    return RecordPlatform(
        platform=facts.platform,
        manifest_digest=facts.manifest_digest,
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
        base=None
        if facts.base is None
        else RecordBase(
            reference=str(_cut(facts.base.reference)),
            digest=facts.base.digest,
            how=facts.base.how,
            verified=facts.base.verified,
        ),
        chain=facts.chain,
    )
