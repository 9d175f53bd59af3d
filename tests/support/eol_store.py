"""`CatalogStore`'s contract in memory, for tests of the writers: resourceVersion and generation as the API
server keeps them (a spec write must name the current resourceVersion, else 409 Conflict; generation grows
when the spec changes, not the status), and a hook to let "another writer" in just before a write."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from distroguard.model.lifecycle import CatalogSnapshot, CatalogStatus
from distroguard.operator.catalogstore import Conflict, StoredCatalog, parse, spec_document


class MemoryStore:
    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.version = 0
        self.spec_writes = 0
        self.status_writes = 0
        self.before_write: Callable[[], object] | None = None
        """Called once, just before the next spec write is checked (another writer's turn)."""

    def read(self) -> StoredCatalog | None:
        return None if self.body is None else parse(copy.deepcopy(self.body))

    def write_spec(self, snapshot: CatalogSnapshot, expected: StoredCatalog | None) -> StoredCatalog:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()
        if (expected is None) != (self.body is None):
            raise Conflict("exists" if expected is None else "gone")
        spec = spec_document(snapshot)
        self.version += 1
        if self.body is None:
            self.body = {"metadata": {"name": "default", "generation": 1}, "spec": spec}
        else:
            assert expected is not None
            if expected.resource_version != self.body["metadata"]["resourceVersion"]:
                raise Conflict("the object has been modified")
            if self.body["spec"] != spec:
                self.body["metadata"]["generation"] += 1
            self.body["spec"] = spec
        self.body["metadata"]["resourceVersion"] = str(self.version)
        self.spec_writes += 1
        return parse(copy.deepcopy(self.body))

    def write_status(self, status: CatalogStatus) -> None:
        assert self.body is not None, "a status needs an object"
        self.version += 1
        self.body["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.body["metadata"]["resourceVersion"] = str(self.version)
        self.status_writes += 1

    def snapshot(self) -> CatalogSnapshot | None:
        stored = self.read()
        return None if stored is None else stored.snapshot
