"""distroguard's PolicyReports and its ClusterPolicyReport in the cluster: written when their content
changes (`audit.policyreports.content`), deleted when their workload is gone.

Only objects labelled `app.kubernetes.io/managed-by=distroguard` are read, replaced or deleted: other
tools' reports in the same kinds are never touched. Blocking calls: `sync` runs in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import kubernetes

from distroguard.audit.cluster import paged
from distroguard.audit.policyreports import LABELS, MANAGED_BY, content
from distroguard.model.policyreport import API_VERSION

GROUP, VERSION = API_VERSION.split("/")
WRITERS = 8
"""Writes in flight at once."""
SELECTOR = f"{MANAGED_BY}={LABELS[MANAGED_BY]}"


@dataclass(frozen=True, slots=True)
class ReportStats:
    written: int = 0
    deleted: int = 0
    unchanged: int = 0


class ReportStore:
    def __init__(self, api: Any) -> None:
        self._custom: Any = kubernetes.client.CustomObjectsApi(api)  # untyped dicts in and out

    def _ours(self) -> dict[tuple[str, str], dict[str, Any]]:
        listed = paged(
            self._custom.list_cluster_custom_object, GROUP, VERSION, "policyreports", label_selector=SELECTOR
        )
        return {(str(r["metadata"]["namespace"]), str(r["metadata"]["name"])): r for r in listed}

    def sync(self, reports: Sequence[dict[str, Any]], summary: dict[str, Any] | None) -> ReportStats:
        """Make the cluster's reports these (and `summary`, when given); the stale ones are deleted."""
        stored = self._ours()
        changed: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for report in reports:
            meta = report["metadata"]
            current = stored.pop((meta["namespace"], meta["name"]), None)
            if current is None or content(current) != content(report):
                changed.append((report, current))
        unchanged = len(reports) - len(changed)

        def delete(key: tuple[str, str]) -> None:
            try:
                self._custom.delete_namespaced_custom_object(GROUP, VERSION, key[0], "policyreports", key[1])
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise

        # The API server handles requests in parallel: a thousand writes one by one would take a while.
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda pair: self._put(*pair, namespaced=True), changed))
            list(pool.map(delete, stored))
        written, deleted = len(changed), len(stored)
        if summary is not None:
            current = self._get_cluster(summary["metadata"]["name"])
            if current is not None and content(current) == content(summary):
                unchanged += 1
            else:
                self._put(summary, current, namespaced=False)
                written += 1
        return ReportStats(written=written, deleted=deleted, unchanged=unchanged)

    def _get_cluster(self, name: str) -> dict[str, Any] | None:
        try:
            response = self._custom.get_cluster_custom_object(
                GROUP, VERSION, "clusterpolicyreports", name, _preload_content=False
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(response.data)
        return found

    def _put(self, report: dict[str, Any], current: dict[str, Any] | None, *, namespaced: bool) -> None:
        meta = report["metadata"]
        body = {**report, "metadata": dict(meta)}
        if current is not None:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if namespaced:
            args: tuple[str, ...] = (GROUP, VERSION, meta["namespace"], "policyreports")
            if current is None:
                self._custom.create_namespaced_custom_object(*args, body)
            else:
                self._custom.replace_namespaced_custom_object(*args, meta["name"], body)
        elif current is None:
            self._custom.create_cluster_custom_object(GROUP, VERSION, "clusterpolicyreports", body)
        else:
            self._custom.replace_cluster_custom_object(
                GROUP, VERSION, "clusterpolicyreports", meta["name"], body
            )
