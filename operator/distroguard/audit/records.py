"""An audit's images as ImageFacts records, and when a stored record needs writing again (pure).

A record is written when what it says changes (facts, EOL state, a new reference), and otherwise only to
move `lastSeen` forward once per `touch_interval`: an audit every few minutes of a cluster whose images
do not change writes nothing, and unused objects still age towards their deletion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from distroguard.audit.results import ImageSummary
from distroguard.model import ImageFacts, Platform
from distroguard.model.platform import MAX_PLATFORMS
from distroguard.model.record import (
    MAX_REFERENCES,
    Access,
    FactsRecord,
    RecordEol,
    RecordOffer,
    RecordReference,
    judged_on,
    record_of,
    sorted_platforms,
)
from distroguard.registry.contract import Offer
from distroguard.registry.manifest import Descriptor


@dataclass(frozen=True, slots=True)
class Seen:
    """One image reference an audit resolved, and to what."""

    image: str
    judged: tuple[ImageSummary, ...]
    """One summary per platform judged, each with its facts (all of one image digest)."""
    digest: str | None
    """What the reference itself resolved to (a tag's digest may be an index's)."""
    access: Access
    offer: Offer | None = None
    """What the image offers, as the resolver's cache knows it (None: not known)."""

    @property
    def facts(self) -> tuple[ImageFacts, ...]:
        return tuple(s.facts for s in self.judged if s.facts is not None)


def eol_of(summary: ImageSummary) -> RecordEol:
    return RecordEol(
        state=summary.eol_state,
        date=summary.eol.isoformat() if summary.eol else None,
        extended_until=summary.extended_until.isoformat() if summary.extended_until else None,
        subject=summary.distribution,
    )


def records_of(seen: Iterable[Seen], now: datetime) -> dict[str, FactsRecord]:
    """One record per image digest, with every reference seen resolving to it and every platform judged
    (under any of them)."""
    grouped: dict[str, list[Seen]] = {}
    for item in seen:
        facts = item.facts
        if facts and facts[0].digest is not None:
            grouped.setdefault(facts[0].digest, []).append(item)
    records: dict[str, FactsRecord] = {}
    for digest, items in grouped.items():
        references = tuple(
            RecordReference(image=i.image, digest=i.digest, observed_at=now)
            for i in {i.image: i for i in items}.values()
        )
        platforms: dict[str, tuple[ImageFacts, RecordEol]] = {}
        for item in items:
            for summary in item.judged:
                if summary.facts is not None:
                    platforms.setdefault(summary.facts.platform, (summary.facts, eol_of(summary)))
        offer = next((i.offer for i in items if i.offer is not None), None)
        records[digest] = record_of(
            digest,
            list(platforms.values()),
            offers=() if offer is None else offers_of(offer),
            single=offer.single if offer is not None else len(platforms) == 1,
            references=references,
            # Facts a namespace's credentials were needed for stay out of the shared cache.
            access="public" if all(i.access == "public" for i in items) else "private",
            resolved_at=now,
            last_seen=now,
        )
    return records


def offers_of(offer: Offer) -> tuple[RecordOffer, ...]:
    """What an image offers, as a record says it."""
    return tuple(
        RecordOffer(
            platform=None if d.platform is None else str(d.platform),
            digest=d.digest,
            size=d.size,
            media_type=d.media_type,
        )
        for d in offer.entries[:MAX_PLATFORMS]
    )


def offer_of(record: FactsRecord) -> Offer | None:
    """What a record says its image offers, as the resolver caches it; None when it says nothing (an
    object written before images were judged per platform, or a malformed platform)."""
    if not record.offers:
        return None
    try:
        entries = tuple(
            Descriptor(
                o.media_type, o.digest, o.size, None if o.platform is None else Platform.parse(o.platform)
            )
            for o in record.offers
        )
    except ValueError:
        return None
    return Offer(record.digest, entries, single=record.single)


def merged(stored: FactsRecord | None, fresh: FactsRecord) -> FactsRecord:
    """`fresh` with what `stored` knew and `fresh` does not: older references, the first resolution time."""
    if stored is None:
        return fresh
    references = {r.image: r for r in stored.references}
    references.update({r.image: r for r in fresh.references})
    kept = sorted(references.values(), key=lambda r: r.observed_at, reverse=True)[:MAX_REFERENCES]
    # A platform judged before and not now (the cluster lost its arm64 nodes) keeps its facts: they stay
    # true for the digest, and a replica seeded with them answers a pod pinned to it without a registry.
    platforms = sorted_platforms((*fresh.platforms, *stored.platforms))
    return fresh.model_copy(
        update={
            "references": tuple(kept),
            "platforms": platforms,
            "judged_on": judged_on(platforms),
            "offers": fresh.offers or stored.offers,
            "resolved_at": min(stored.resolved_at, fresh.resolved_at),
            "access": "private" if "private" in (stored.access, fresh.access) else "public",
        }
    )


def _said(record: FactsRecord) -> object:
    """What a record says, without when it was seen."""
    return record.model_dump(
        exclude={"last_seen": True, "references": {"__all__": {"observed_at"}}},
    )


def needs_write(stored: FactsRecord | None, wanted: FactsRecord, touch_interval: timedelta) -> bool:
    if stored is None or _said(stored) != _said(wanted):
        return True
    return wanted.last_seen - stored.last_seen >= touch_interval
