"""The platforms that matter: those of the cluster's Nodes (a metadata-only watch), or a fixed list.

`run --platforms auto` (the default) reads each Node's `kubernetes.io/os` and `kubernetes.io/arch` labels
(the kubelet sets them when it registers: os/architecture pairs, no variant), so that a new arm64 Node
counts for the next review within seconds, and a removed one stops counting. A metadata-only watch
(`operator.metawatch`: labels, no status, which is most of a Node's bytes) in a daemon thread; each Node's
platform is kept by name, and `current()` is a tuple read from any thread or the event loop without a lock
(replaced whole). A cluster without Nodes (or before the first list) counts as `linux/amd64`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import kubernetes

from distroguard.model import Platform
from distroguard.model.platform import DEFAULT_PLATFORM, node_platform
from distroguard.operator.metawatch import Metadata, MetadataWatch

logger = logging.getLogger(__name__)

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


class NodePlatforms(MetadataWatch):
    """`run --platforms auto`: the distinct platforms of the cluster's Nodes, as they come and go."""

    def __init__(self, api: Any, on_change: Callable[[], None] | None = None) -> None:
        """`on_change` is called from the watch's thread when the set of platforms changes."""
        core: Any = kubernetes.client.CoreV1Api(api)
        super().__init__(core.list_node, "node")
        self._on_change = on_change
        self._nodes: dict[str, Platform] = {}
        self._current: tuple[Platform, ...] = EMPTY
        self._listed = threading.Event()

    def current(self) -> tuple[Platform, ...]:
        """The platforms that matter now, in a stable order; linux/amd64 for a cluster without Nodes."""
        return self._current

    def platform_of(self, node: str) -> Platform | None:
        """The platform of the Node named `node`, when it is known."""
        return self._nodes.get(node)

    def wait_listed(self, timeout: float) -> bool:
        """Wait until the Nodes were listed once; whether they were."""
        return self._listed.wait(timeout)

    def listed(self, items: Sequence[Metadata]) -> None:
        nodes: dict[str, Platform] = {}
        for meta in items:
            platform = node_platform(meta.get("labels") or {})
            if platform is not None:
                nodes[str(meta.get("name"))] = platform
        self._nodes = nodes
        self._publish()
        self._listed.set()

    def changed(self, kind: str, metadata: Metadata) -> None:
        name = str(metadata.get("name") or "")
        platform = None if kind == "DELETED" else node_platform(metadata.get("labels") or {})
        nodes = dict(self._nodes)  # replaced whole: read from other threads without a lock
        if platform is None:
            nodes.pop(name, None)
        else:
            nodes[name] = platform
        self._nodes = nodes
        self._publish()

    def _publish(self) -> None:
        found = tuple(sorted(set(self._nodes.values()), key=str)) or EMPTY
        if found != self._current:
            logger.info("the cluster's platforms: %s", ", ".join(str(p) for p in found))
            self._current = found
            if self._on_change is not None:
                self._on_change()
