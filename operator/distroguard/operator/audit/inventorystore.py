"""ImageFacts objects in the cluster: the audit writer's side (write what changed, delete what nobody
uses) and the webhook replicas' side (`seed`: a watched object into the shared resolver's cache).

Blocking calls (the synchronous `kubernetes` client): `sync` runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
import orjson
from pydantic import ValidationError

from distroguard.audit.cluster import paged
from distroguard.audit.records import merged, needs_write, offer_of
from distroguard.model.api import FACTS_KIND, FACTS_PLURAL, GROUP, VERSION
from distroguard.model.record import FactsRecord, object_name
from distroguard.operator.audit.objectwriter import WRITERS, ObjectWriter, Resource
from distroguard.resolver import Resolver

logger = logging.getLogger(__name__)

MAX_OBJECTS = 20_000
"""ImageFacts objects kept at most (about 3 KB each in etcd): images in use always are, unused ones only
while there is room."""
LABELS = {"app.kubernetes.io/managed-by": "distroguard"}
FACTS = Resource(GROUP, VERSION, FACTS_PLURAL)


@dataclass(frozen=True, slots=True)
class SyncStats:
    written: int = 0
    deleted: int = 0
    unchanged: int = 0


def parse_record(body: Mapping[str, Any]) -> FactsRecord | None:
    """The record of a watched or listed object; None (logged) when it is not one of ours or malformed."""
    try:
        return FactsRecord.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        name = (body.get("metadata") or {}).get("name", "?")
        logger.warning("ImageFacts %s ignored: %s", name, exc.errors(include_url=False)[:3])
        return None


def seed(resolver: Resolver, record: FactsRecord, now: datetime) -> int:
    """Teach `resolver` (the anonymous, shared one) a public record's facts, each platform's, and what the
    image offers (both tiers a review reads: without the offer, a review judging every platform that
    matters would ask the registry for the index again); private ones are an inventory entry only (a
    namespace without the credentials must not be answered from them)."""
    if record.access != "public" or not record.platforms:
        return 0
    references = [(r.image, r.digest, (now - r.observed_at).total_seconds()) for r in record.references]
    return resolver.remember(record.facts(), references, offer_of(record))


class InventoryStore:
    def __init__(
        self, api: Any, *, ttl: timedelta, touch_interval: timedelta, max_objects: int = MAX_OBJECTS
    ) -> None:
        self._custom: Any = kubernetes.client.CustomObjectsApi(api)  # untyped dicts in and out
        self._writer = ObjectWriter(api)
        self.ttl = ttl
        """Objects no workload used for this long are deleted."""
        self.touch_interval = touch_interval
        """`lastSeen` is moved forward at most this often (otherwise an object is written on change)."""
        self.max_objects = max_objects
        """Unused objects beyond this many are deleted before their TTL, the least recently seen first."""

    def _list(self) -> dict[str, tuple[FactsRecord | None, str]]:
        """Each stored object's record (None: unreadable) and resourceVersion, by name: parsed page by page,
        so that the listed JSON is never held whole."""
        listed = paged(self._custom.list_cluster_custom_object, GROUP, VERSION, FACTS_PLURAL)
        return {
            str(item["metadata"]["name"]): (parse_record(item), str(item["metadata"]["resourceVersion"]))
            for item in listed
        }

    def records(self) -> list[FactsRecord]:
        """Every readable ImageFacts record of the cluster (what a process starting up seeds its cache
        with)."""
        return [record for record, _ in self._list().values() if record is not None]

    def sync(self, records: Mapping[str, FactsRecord], now: datetime) -> SyncStats:
        """Write the records that changed, delete the objects unused for `ttl`."""
        stored = self._list()
        changed: list[tuple[str, FactsRecord, str | None]] = []
        for digest, fresh in records.items():
            name = object_name(digest)
            previous, version = stored.pop(name, (None, None))
            wanted = merged(previous, fresh)
            if needs_write(previous, wanted, self.touch_interval):
                changed.append((name, wanted, version))
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda change: self._write(*change), changed))
        written, unchanged, deleted = len(changed), len(records) - len(changed), 0
        unused = sorted(
            ((name, record) for name, (record, _) in stored.items()),
            key=lambda pair: pair[1].last_seen if pair[1] is not None else datetime.min.replace(tzinfo=UTC),
            reverse=True,
        )
        room = max(0, self.max_objects - len(records))
        for rank, (name, record) in enumerate(unused):
            if record is not None and now - record.last_seen < self.ttl and rank < room:
                continue
            try:
                self._custom.delete_cluster_custom_object(GROUP, VERSION, FACTS_PLURAL, name)
                deleted += 1
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise
        return SyncStats(written=written, deleted=deleted, unchanged=unchanged)

    def _write(self, name: str, record: FactsRecord, version: str | None) -> None:
        """Create the object, or replace the stored one of resourceVersion `version`."""
        body: dict[str, Any] = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": FACTS_KIND,
            "metadata": {"name": name, "labels": dict(LABELS)},
            "spec": record.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        for _ in range(2):
            try:  # the answer is the object again: nothing in it is needed
                if version is None:
                    self._writer.create(FACTS, body)
                else:
                    body["metadata"]["resourceVersion"] = version
                    self._writer.replace(FACTS, name, body)
                return
            except kubernetes.client.ApiException as exc:
                if exc.status != 409:
                    raise
            # It changed (or appeared) since the list (another writer during a hand-over): the newest
            # facts win, on top of what is stored now.
            current = orjson.loads(
                self._custom.get_cluster_custom_object(
                    GROUP, VERSION, FACTS_PLURAL, name, _preload_content=False
                ).data
            )
            version = str(current["metadata"]["resourceVersion"])
        raise RuntimeError(f"ImageFacts {name} kept changing while it was written")
