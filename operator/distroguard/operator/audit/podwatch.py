"""Pods coming and going, told to the audit, from a metadata-only watch.

The audit needs to know *that* pods changed, not what they hold (it lists them itself). kopf's watch
would keep a worker and the whole body of every pod in flight: measured with the audit benchmark, 10,000
pods cost about 140 MB and 10 s of the first audit. This watch asks the API server for
`PartialObjectMetadata` (names, uids, generations: a few hundred bytes a pod) and keeps one small dict.

A pod created or deleted, or whose spec changed (its generation), pokes the audit; status updates, most of
the events, do not. The watch runs in a daemon thread (the `kubernetes` client is synchronous) and resumes
from the last resourceVersion it saw; when that is too old (410 Gone), it starts again from now and pokes,
since changes may have been missed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import kubernetes

logger = logging.getLogger(__name__)

METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
METADATA_LIST = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
WATCH_SECONDS = 60
"""The API server ends each watch after this long; the next one resumes where it stopped."""
RETRY_SECONDS = 5.0


class PodWatch:
    def __init__(self, api: Any, on_change: Callable[[], None]) -> None:
        """`on_change` is called from the watch's thread: make it thread-safe (`call_soon_threadsafe`)."""
        self._core: Any = kubernetes.client.CoreV1Api(api)  # raw responses: no model classes
        self._on_change = on_change
        self._stop = threading.Event()
        self._generations: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="distroguard pod watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._current_version()
                version = self._watch(version)
            except Exception as exc:  # the API server restarted, a network blip: try again shortly
                logger.warning("pod watch interrupted (%s); resuming", exc)
                self._stop.wait(RETRY_SECONDS)

    def _current_version(self) -> str:
        response = self._core.list_pod_for_all_namespaces(
            limit=1, _preload_content=False, _headers=METADATA_LIST
        )
        return str(json.loads(response.data)["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str | None:
        """Follow the events after `version`; the version to resume from (None: start again from now)."""
        response = self._core.list_pod_for_all_namespaces(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, WATCH_SECONDS + 30),
            _headers=METADATA_ONLY,
        )
        try:
            buffer = b""
            for chunk in response.stream(64 * 1024):
                if self._stop.is_set():
                    return version
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    resumed = self._event(json.loads(line))
                    if resumed is None:
                        return None
                    version = resumed or version
        finally:
            response.release_conn()
        return version

    def _event(self, event: dict[str, Any]) -> str | None:
        """The resourceVersion after `event` ("" when it has none); None when the watch must restart."""
        kind = event.get("type")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:  # our resourceVersion is gone from the server's history
                self._on_change()
                return None
            raise RuntimeError(f"pod watch error: {obj.get('message') or obj}")
        uid = str(meta.get("uid") or "")
        generation = meta.get("generation")
        if kind == "ADDED":
            self._generations[uid] = generation
            self._on_change()
        elif kind == "DELETED":
            self._generations.pop(uid, None)
            self._on_change()
        elif kind == "MODIFIED":
            known = self._generations.get(uid, generation)
            self._generations[uid] = generation
            if known != generation:
                self._on_change()
        return str(meta.get("resourceVersion") or "")
