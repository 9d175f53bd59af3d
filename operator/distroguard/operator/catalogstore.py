"""The cluster's EOLCatalog object (`default`), read and written with optimistic concurrency.

Every write of the spec names the resourceVersion it was decided on (or creates the object when there
was none): when another writer got there first, the API server answers 409 Conflict and the writer reads
again and decides again, so two writers never lose an update, and never-older-over-newer holds against
what is really stored. The status (the refresher's bookkeeping) is written through its subresource,
after the spec. Blocking calls: run them in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Protocol

import kubernetes

from distroguard.eol.fileformat import from_document
from distroguard.eol.update import require_not_older
from distroguard.errors import CatalogError
from distroguard.model.api import API_VERSION, CATALOG_KIND, CATALOG_NAME, CATALOG_PLURAL, GROUP, VERSION
from distroguard.model.lifecycle import CatalogSnapshot, CatalogStatus

logger = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5
"""Conflicts tolerated in a row before a write gives up (each one means another writer just wrote)."""


class Conflict(Exception):
    """Another writer changed (or created) the object since it was read."""


@dataclass(frozen=True, slots=True)
class StoredCatalog:
    snapshot: CatalogSnapshot | None
    """None when the stored spec is invalid (`problem` says why)."""
    status: CatalogStatus
    resource_version: str
    generation: int
    problem: str | None = None

    def validators_valid(self) -> bool:
        """Whether the status' validators describe the spec stored now."""
        return self.status.observed_generation == self.generation


def snapshot_time(snapshot: CatalogSnapshot) -> datetime:
    return datetime.combine(snapshot.snapshot, time(), tzinfo=UTC)


class CatalogObjects(Protocol):
    """What the writers need of the object (`CatalogStore`; tests keep it in memory)."""

    def read(self) -> StoredCatalog | None: ...

    def write_spec(self, snapshot: CatalogSnapshot, expected: StoredCatalog | None) -> StoredCatalog: ...

    def write_status(self, status: CatalogStatus) -> None: ...


class CatalogStore:
    def __init__(self, api: Any) -> None:
        self._custom: Any = kubernetes.client.CustomObjectsApi(api)  # untyped dicts in and out

    def read(self) -> StoredCatalog | None:
        """The object; None when there is none."""
        try:
            body = self._custom.get_cluster_custom_object(GROUP, VERSION, CATALOG_PLURAL, CATALOG_NAME)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return parse(body)

    def write_spec(self, snapshot: CatalogSnapshot, expected: StoredCatalog | None) -> StoredCatalog:
        """Create the object (`expected` None) or replace its spec as of `expected`'s resourceVersion;
        `Conflict` when someone else wrote meanwhile."""
        body: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": CATALOG_KIND,
            "metadata": {"name": CATALOG_NAME},
            "spec": spec_document(snapshot),
        }
        try:
            if expected is None:
                stored = self._custom.create_cluster_custom_object(GROUP, VERSION, CATALOG_PLURAL, body)
            else:
                body["metadata"]["resourceVersion"] = expected.resource_version
                stored = self._custom.replace_cluster_custom_object(
                    GROUP, VERSION, CATALOG_PLURAL, CATALOG_NAME, body
                )
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(str(exc.reason)) from None
            raise
        return parse(stored)

    def write_status(self, status: CatalogStatus) -> None:
        """Replace the status as a whole (a JSON patch `add` replaces the member when present)."""
        value = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        self._custom.patch_cluster_custom_object_status(
            GROUP,
            VERSION,
            CATALOG_PLURAL,
            CATALOG_NAME,
            [{"op": "add", "path": "/status", "value": value}],
            _content_type="application/json-patch+json",
        )


def spec_document(snapshot: CatalogSnapshot) -> dict[str, Any]:
    """The object's spec: the snapshot file's JSON (defaults left out: the schema has them)."""
    return snapshot.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def parse(body: dict[str, Any]) -> StoredCatalog:
    metadata = body.get("metadata") or {}
    problem = None
    snapshot = None
    try:
        snapshot = from_document(body.get("spec"), f"{CATALOG_KIND} {CATALOG_NAME}")
    except CatalogError as exc:
        problem = str(exc)
    try:
        status = CatalogStatus.model_validate(body.get("status") or {})
    except ValueError:
        status = CatalogStatus()  # bookkeeping only: unreadable, it is started afresh
    return StoredCatalog(
        snapshot=snapshot,
        status=status,
        resource_version=str(metadata.get("resourceVersion") or ""),
        generation=int(metadata.get("generation") or 0),
        problem=problem,
    )


@dataclass(frozen=True, slots=True)
class Pushed:
    snapshot: CatalogSnapshot
    replaced: CatalogSnapshot | None
    """What was there before (None: no object, or an invalid one)."""


def push(
    store: CatalogObjects,
    decide: Callable[[StoredCatalog | None], CatalogSnapshot],
    *,
    status: Callable[[StoredCatalog, StoredCatalog | None], CatalogStatus] | None = None,
    attempts: int = WRITE_ATTEMPTS,
) -> Pushed:
    """Read the object, `decide` the new spec from it (raising to write nothing, e.g. `OlderCatalog`),
    write it as of what was read; on a conflict, read and decide again. Then the status: `status(written,
    before)`, or by default the previous status with the new snapshot's time (its validators then belong
    to an older generation, and are ignored)."""
    for attempt in range(1, attempts + 1):
        before = store.read()
        snapshot = decide(before)
        require_not_older(snapshot, before.snapshot if before else None, f"the cluster's {CATALOG_KIND}")
        try:
            written = store.write_spec(snapshot, before)
        except Conflict:
            if attempt == attempts:
                raise
            logger.info("%s %s changed meanwhile: reading it again", CATALOG_KIND, CATALOG_NAME)
            continue
        new_status = (
            status(written, before)
            if status is not None
            else (before.status if before else CatalogStatus()).model_copy(
                update={"snapshot_time": snapshot_time(snapshot)}
            )
        )
        store.write_status(new_status)
        return Pushed(snapshot, before.snapshot if before else None)
    raise AssertionError("unreachable: the last attempt returns or raises")
