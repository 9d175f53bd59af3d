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
from distroguard.model import ImageFacts
from distroguard.model.record import (
    MAX_REFERENCES,
    Access,
    FactsRecord,
    RecordEol,
    RecordReference,
    record_of,
)


@dataclass(frozen=True, slots=True)
class Seen:
    """One image reference an audit resolved, and to what."""

    image: str
    facts: ImageFacts
    summary: ImageSummary
    digest: str | None
    """What the reference itself resolved to (a tag's digest may be an index's)."""
    access: Access


def eol_of(summary: ImageSummary) -> RecordEol:
    return RecordEol(
        state=summary.eol_state,
        date=summary.eol.isoformat() if summary.eol else None,
        extended_until=summary.extended_until.isoformat() if summary.extended_until else None,
        subject=summary.distribution,
    )


def records_of(seen: Iterable[Seen], now: datetime) -> dict[str, FactsRecord]:
    """One record per image digest, with every reference seen resolving to it."""
    grouped: dict[str, list[Seen]] = {}
    for item in seen:
        if item.facts.digest is not None:
            grouped.setdefault(item.facts.digest, []).append(item)
    records: dict[str, FactsRecord] = {}
    for digest, items in grouped.items():
        first = items[0]
        references = tuple(
            RecordReference(image=i.image, digest=i.digest, observed_at=now)
            for i in {i.image: i for i in items}.values()
        )
        records[digest] = record_of(
            first.facts,
            references=references,
            # Facts a namespace's credentials were needed for stay out of the shared cache.
            access="public" if all(i.access == "public" for i in items) else "private",
            eol=eol_of(first.summary),
            resolved_at=now,
            last_seen=now,
        )
    return records


def merged(stored: FactsRecord | None, fresh: FactsRecord) -> FactsRecord:
    """`fresh` with what `stored` knew and `fresh` does not: older references, the first resolution time."""
    if stored is None:
        return fresh
    references = {r.image: r for r in stored.references}
    references.update({r.image: r for r in fresh.references})
    kept = sorted(references.values(), key=lambda r: r.observed_at, reverse=True)[:MAX_REFERENCES]
    return fresh.model_copy(
        update={
            "references": tuple(kept),
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
