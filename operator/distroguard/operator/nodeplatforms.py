"""The platforms that matter: those of the cluster's Nodes (a metadata-only watch), or a fixed list.

`run --platforms auto` (the default) reads each Node's `kubernetes.io/os` and `kubernetes.io/arch` labels
(the kubelet sets them when it registers: os/architecture pairs, no variant), so that a new arm64 Node
counts for the next review within seconds, and a removed one stops counting. Like the pod watch
(`operator.audit.podwatch`), it asks for `PartialObjectMetadata` (labels, no status: a Node's status is
most of its bytes) and runs in a daemon thread, the `kubernetes` client being synchronous; each Node's
platform is kept by name, and `current()` is a tuple read from any thread or the event loop without a lock
(replaced whole). A cluster without Nodes (or before the first list) counts as `linux/amd64`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import kubernetes

from distroguard.model import Platform
from distroguard.model.platform import DEFAULT_PLATFORM, node_platform

logger = logging.getLogger(__name__)

METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
METADATA_LIST = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
WATCH_SECONDS = 60
RETRY_SECONDS = 5.0
EMPTY: tuple[Platform, ...] = (DEFAULT_PLATFORM,)
"""The platforms of a cluster without Nodes."""


class FixedPlatforms:
    """`run --platforms LIST`: the same platforms whatever the cluster has."""

    def __init__(self, platforms: Sequence[Platform]) -> None:
        self._platforms = tuple(platforms) or EMPTY

    def current(self) -> tuple[Platform, ...]:
        return self._platforms

    def platform_of(self, node: str) -> Platform | None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


class NodePlatforms:
    """`run --platforms auto`: the distinct platforms of the cluster's Nodes, as they come and go."""

    def __init__(self, api: Any, on_change: Callable[[], None] | None = None) -> None:
        """`on_change` is called from the watch's thread when the set of platforms changes."""
        self._core: Any = kubernetes.client.CoreV1Api(api)
        self._on_change = on_change
        self._stop = threading.Event()
        self._nodes: dict[str, Platform] = {}
        self._current: tuple[Platform, ...] = EMPTY
        self._listed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="distroguard node watch", daemon=True)

    def current(self) -> tuple[Platform, ...]:
        """The platforms that matter now, in a stable order; linux/amd64 for a cluster without Nodes."""
        return self._current

    def platform_of(self, node: str) -> Platform | None:
        """The platform of the Node named `node`, when it is known."""
        return self._nodes.get(node)

    def start(self) -> None:
        self._thread.start()

    def wait_listed(self, timeout: float) -> bool:
        """Wait until the Nodes were listed once; whether they were."""
        return self._listed.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
            except Exception as exc:  # the API server restarted, a network blip: list again shortly
                logger.warning("node watch interrupted (%s); listing again", exc)
                version = None
                self._stop.wait(RETRY_SECONDS)

    def _list(self) -> str:
        response = self._core.list_node(_preload_content=False, _headers=METADATA_LIST)
        data = json.loads(response.data)
        nodes: dict[str, Platform] = {}
        for item in data.get("items") or []:
            meta = item.get("metadata") or {}
            platform = node_platform(meta.get("labels") or {})
            if platform is not None:
                nodes[str(meta.get("name"))] = platform
        self._nodes = nodes
        self._publish()
        self._listed.set()
        return str(data["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str | None:
        response = self._core.list_node(
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
                    if line.strip():
                        resumed = self._event(json.loads(line))
                        if resumed is None:
                            return None
                        version = resumed or version
        finally:
            response.release_conn()
        return version

    def _event(self, event: dict[str, Any]) -> str | None:
        kind = event.get("type")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:  # our resourceVersion is gone: list again
                return None
            raise RuntimeError(f"node watch error: {obj.get('message') or obj}")
        name = str(meta.get("name") or "")
        if kind in ("ADDED", "MODIFIED"):
            platform = node_platform(meta.get("labels") or {})
            nodes = dict(self._nodes)
            if platform is None:
                nodes.pop(name, None)
            else:
                nodes[name] = platform
            self._nodes = nodes
            self._publish()
        elif kind == "DELETED":
            nodes = dict(self._nodes)
            nodes.pop(name, None)
            self._nodes = nodes
            self._publish()
        return str(meta.get("resourceVersion") or "")

    def _publish(self) -> None:
        found = tuple(sorted(set(self._nodes.values()), key=str)) or EMPTY
        if found != self._current:
            logger.info("the cluster's platforms: %s", ", ".join(str(p) for p in found))
            self._current = found
            if self._on_change is not None:
                self._on_change()
