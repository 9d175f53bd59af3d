"""distroguard's PolicyReports and its ClusterPolicyReport in the cluster: written when their content
changes (`audit.policyreports.content`), deleted when their workload is gone.

Only objects labelled `app.kubernetes.io/managed-by=distroguard` are read, replaced or deleted: other
tools' reports in the same kinds are never touched. Blocking calls: `sync` runs in a worker thread.

What a stored report says is known without reading it: each is written with an annotation, the sha256 of
its content, and the store lists only the reports' metadata (`PartialObjectMetadataList`). At 10,000
workloads that is a few MB listed instead of the reports' whole bodies (tens of MB of JSON, several times
that decoded), on every audit. A report someone else changed has another resourceVersion than the one
this process wrote, and is written again whatever its annotation says; after a restart the annotation is
trusted until the report's content changes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import kubernetes
import orjson

from distroguard.audit.cluster import paged
from distroguard.audit.policyreports import LABELS, MANAGED_BY, content
from distroguard.model.policyreport import API_VERSION
from distroguard.operator.audit.objectwriter import WRITERS, ObjectWriter, Resource

GROUP, VERSION = API_VERSION.split("/")
SELECTOR = f"{MANAGED_BY}={LABELS[MANAGED_BY]}"
CONTENT_ANNOTATION = "distroguard.dev/content-sha256"
"""The sha256 of the report's `content()` when it was written."""
_METADATA_LIST = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}


def fingerprint(report: Mapping[str, Any]) -> str:
    """The sha256 of what a report says (`content`): equal for two audits that found the same.

    The bytes hashed are compact JSON with sorted keys and UTF-8 text, byte for byte what
    `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)` gives, so that the
    annotations of reports already stored stay valid; `orjson` makes them several times faster."""
    return hashlib.sha256(orjson.dumps(content(dict(report)), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _stamped(report: Mapping[str, Any], digest: str) -> dict[str, Any]:
    meta = dict(report["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), CONTENT_ANNOTATION: digest}
    return {**report, "metadata": meta}


@dataclass(frozen=True, slots=True)
class ReportStats:
    written: int = 0
    deleted: int = 0
    unchanged: int = 0


class ReportStore:
    def __init__(self, api: Any) -> None:
        self._custom: Any = kubernetes.client.CustomObjectsApi(api)  # untyped dicts in and out
        self._writer = ObjectWriter(api)
        self._written: dict[tuple[str, str], str] = {}
        """The resourceVersion of each report as this process last wrote it."""

    def _ours(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Each of our reports' metadata, by (namespace, name)."""
        listed = paged(
            self._custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            "policyreports",
            label_selector=SELECTOR,
            _headers=_METADATA_LIST,
        )
        return {(str(m["namespace"]), str(m["name"])): m for m in (r["metadata"] for r in listed)}

    def _says(self, key: tuple[str, str], metadata: Mapping[str, Any], digest: str) -> bool:
        """Whether the stored report (its metadata) says what `digest` stands for."""
        if (metadata.get("annotations") or {}).get(CONTENT_ANNOTATION) != digest:
            return False
        written = self._written.get(key)
        return written is None or written == metadata.get("resourceVersion")

    def sync(self, reports: Iterable[dict[str, Any]], summary: dict[str, Any] | None) -> ReportStats:
        """Make the cluster's reports these (and `summary`, when given); the stale ones are deleted.

        `reports` is read once, as it comes: a report that changed is handed to a writer at once and one
        that did not is dropped, so that an audit of many workloads never holds every report at once."""
        stored = self._ours()
        written = unchanged = 0
        room = threading.BoundedSemaphore(WRITERS * 4)  # reports made but not yet written, at most
        futures: list[Future[None]] = []

        def put(report: dict[str, Any], current: Mapping[str, Any] | None) -> None:
            try:
                self._put(report, current, namespaced=True)
            finally:
                room.release()

        # The API server handles requests in parallel: a thousand writes one by one would take a while.
        with ThreadPoolExecutor(WRITERS) as pool:
            for report in reports:
                meta = report["metadata"]
                key = (meta["namespace"], meta["name"])
                current = stored.pop(key, None)
                digest = fingerprint(report)
                if current is not None and self._says(key, current, digest):
                    unchanged += 1
                    continue
                room.acquire()
                futures.append(pool.submit(put, _stamped(report, digest), current))
                written += 1
            for future in futures:
                future.result()  # the first failure, raised
            list(pool.map(self._delete, stored))
        deleted = len(stored)
        if summary is not None:
            current = self._get_cluster(summary["metadata"]["name"])
            if current is not None and content(current) == content(summary):
                unchanged += 1
            else:
                self._put(summary, None if current is None else current["metadata"], namespaced=False)
                written += 1
        return ReportStats(written=written, deleted=deleted, unchanged=unchanged)

    def _delete(self, key: tuple[str, str]) -> None:
        self._written.pop(key, None)
        try:
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, key[0], "policyreports", key[1])
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise

    def _get_cluster(self, name: str) -> dict[str, Any] | None:
        try:
            response = self._custom.get_cluster_custom_object(
                GROUP, VERSION, "clusterpolicyreports", name, _preload_content=False
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = orjson.loads(response.data)
        return found

    def _put(self, report: dict[str, Any], current: Mapping[str, Any] | None, *, namespaced: bool) -> None:
        """Create `report`, or replace the stored one whose metadata is `current`."""
        meta = report["metadata"]
        body = {**report, "metadata": dict(meta)}
        if current is not None:
            body["metadata"]["resourceVersion"] = current["resourceVersion"]
        if namespaced:
            resource = Resource(GROUP, VERSION, "policyreports", meta["namespace"])
        else:
            resource = Resource(GROUP, VERSION, "clusterpolicyreports")
        if current is None:
            answer = self._writer.create(resource, body)
        else:
            answer = self._writer.replace(resource, meta["name"], body)
        if namespaced:  # the answer is the whole object again: only its version is read
            stored = orjson.loads(answer)["metadata"]
            self._written[meta["namespace"], meta["name"]] = str(stored["resourceVersion"])
