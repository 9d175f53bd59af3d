"""Pods coming and going, told to the audit, from a metadata-only watch.

The audit needs to know *that* pods changed, not what they hold (it lists them itself). kopf's watch
would keep a worker and the whole body of every pod in flight: measured with the audit benchmark, 10,000
pods cost about 140 MB and 10 s of the first audit. This watch asks the API server for
`PartialObjectMetadata` (names, uids, generations: a few hundred bytes a pod) and keeps one small dict.

A pod created or deleted, or whose spec changed (its generation), pokes the audit; status updates, most of
the events, do not. The watch itself (`operator.metawatch`) runs in a daemon thread; when it loses track
(410 Gone), it starts again from now and pokes, since changes may have been missed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import kubernetes

from distroguard.operator.metawatch import Metadata, MetadataWatch


class PodWatch(MetadataWatch):
    #: Only the list's version counts: the audit lists the pods itself.
    list_arguments = {"limit": 1}

    def __init__(self, api: Any, on_change: Callable[[], None]) -> None:
        """`on_change` is called from the watch's thread: make it thread-safe (`call_soon_threadsafe`)."""
        core: Any = kubernetes.client.CoreV1Api(api)  # raw responses: no model classes
        super().__init__(core.list_pod_for_all_namespaces, "pod")
        self._on_change = on_change
        self._generations: dict[str, Any] = {}

    def listed(self, items: Sequence[Metadata]) -> None:
        return None  # the first audit reads them; a relisting after a 410 has poked already

    def changed(self, kind: str, metadata: Metadata) -> None:
        uid = str(metadata.get("uid") or "")
        generation = metadata.get("generation")
        if kind == "ADDED":
            self._generations[uid] = generation
            self._on_change()
        elif kind == "DELETED":
            self._generations.pop(uid, None)
            self._on_change()
        else:
            known = self._generations.get(uid, generation)
            self._generations[uid] = generation
            if known != generation:
                self._on_change()

    def lost_track(self) -> None:
        self._on_change()
