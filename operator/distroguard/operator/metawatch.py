"""A metadata-only watch of one kind of object, in a daemon thread (the `kubernetes` client is synchronous).

It asks the API server for `PartialObjectMetadata` (names, uids, labels, generations: a few hundred bytes
an object, where kopf's watch would keep each whole body and a worker in flight), lists once, then follows
the events from the list's resourceVersion, resuming where each watch ended (the API server ends them
after `WATCH_SECONDS`) or broke. When that version is gone from the server's history (410 Gone) it lists
again, since changes may have been missed. Subclasses say what a list and an event mean to them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
METADATA_LIST = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
WATCH_SECONDS = 60
"""The API server ends each watch after this long; the next one resumes where it stopped."""
RETRY_SECONDS = 5.0

Metadata = Mapping[str, Any]


class MetadataWatch:
    """Follows the objects that `list_call` (a `kubernetes` client list method) lists."""

    #: What the list asks besides the metadata-only headers (e.g. `limit=1` when only its version counts).
    list_arguments: Mapping[str, Any] = {}
    #: Whole objects instead of their metadata (for what only a spec says); the hooks get whole objects.
    whole_objects = False

    def __init__(self, list_call: Callable[..., Any], what: str) -> None:
        self._list_call = list_call
        self._what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"distroguard {what} watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------------------ what subclasses say

    def listed(self, items: Sequence[Metadata]) -> None:
        """The objects as listed (at the start, and again after a 410)."""

    def changed(self, kind: str, metadata: Metadata) -> None:
        """One event: ADDED, MODIFIED or DELETED, with the object's metadata."""

    def lost_track(self) -> None:
        """The watched version is gone from the server's history: events may have been missed."""

    def not_served(self) -> None:
        """The API server does not serve this kind (404 on the list): the watch ends."""
        logger.warning("%s: not served by this cluster", self._what)

    # ------------------------------------------------------------------------------------------ the loop

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    try:
                        version = self._list()
                    except Exception as exc:
                        if getattr(exc, "status", None) == 404:  # the kind is not served (an older cluster)
                            self.not_served()
                            return
                        raise
                version = self._follow(version)
            except Exception as exc:  # the API server restarted, a network blip: resume shortly
                logger.warning("%s watch interrupted (%s); resuming", self._what, exc)
                self._stop.wait(RETRY_SECONDS)

    def _list(self) -> str:
        headers = {} if self.whole_objects else METADATA_LIST
        response = self._list_call(_preload_content=False, _headers=headers, **self.list_arguments)
        data = json.loads(response.data)
        self.listed([self._view(item) for item in data.get("items") or []])
        return str(data["metadata"]["resourceVersion"])

    def _follow(self, version: str) -> str | None:
        """Follow the events after `version`; the version to resume from (None: list again)."""
        response = self._list_call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, WATCH_SECONDS + 30),
            _headers={} if self.whole_objects else METADATA_ONLY,
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

    def _event(self, event: Mapping[str, Any]) -> str | None:
        """The resourceVersion after `event` ("" when it has none); None when the watch must list again."""
        kind = str(event.get("type"))
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                self.lost_track()
                return None
            raise RuntimeError(f"{self._what} watch error: {obj.get('message') or obj}")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.changed(kind, self._view(obj))
        return str(meta.get("resourceVersion") or "")

    def _view(self, obj: Mapping[str, Any]) -> Metadata:
        """What the hooks are given of `obj`: the whole object, or its metadata."""
        return obj if self.whole_objects else obj.get("metadata") or {}
