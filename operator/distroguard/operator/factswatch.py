"""The cluster's ImageFacts into the shared resolver's cache: what every replica learns from the audit.

One list at start, page by page (the whole inventory is in the cache once `wait_listed` returns), then
the events from that list's resourceVersion, in a daemon thread (`metawatch`). Each record is packed in
the thread (`factspack`: its JSON compressed, read into facts only when a lookup needs it) and handed to
the event loop in batches (the resolver's caches belong to the loop's thread); a watched change is read
into the hot tiers at once, as it replaces what they may hold.

Not a kopf watch: kopf would list every object again after the start-up read and hand each one to a
worker of its own; at 50,000 objects that is a second whole listing held in memory and minutes of events
before a fact written now reaches the cache. Here a fact written by the audit is one event, seeded as it
arrives.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kubernetes
import orjson

from distroguard.audit.cluster import PAGE_SIZE
from distroguard.model.api import FACTS_PLURAL, GROUP, VERSION
from distroguard.operator.factspack import Packed, Packer, attach, take
from distroguard.operator.metawatch import Metadata, MetadataWatch
from distroguard.resolver import Resolver

logger = logging.getLogger(__name__)

PAGES_AHEAD = 2
"""Listed pages waiting to be packed at most (each is a few MB of parsed JSON)."""


class FactsWatch(MetadataWatch):
    whole_objects = True

    def __init__(self, api: Any, resolver: Resolver, loop: asyncio.AbstractEventLoop) -> None:
        custom: Any = kubernetes.client.CustomObjectsApi(api)  # raw responses: no model classes
        super().__init__(
            functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, FACTS_PLURAL), "ImageFacts"
        )
        self._resolver = resolver
        self._loop = loop
        self._packer = Packer(resolver.cache.settings.tag_ttl)
        attach(resolver)
        self._listed = threading.Event()
        self.public = 0
        """Public records the first list handed to the cache so far (private ones are an inventory entry
        only)."""

    def wait_listed(self, timeout: float | None = None) -> bool:
        """Wait until the first list was handed to the loop (or found nothing served); whether it was."""
        return self._listed.wait(timeout)

    def _take(self, packed: Sequence[Packed], now_too: bool) -> None:
        """On the loop's thread."""
        take(self._resolver, packed, now_too=now_too)

    def _hand_over(self, items: Sequence[Mapping[str, Any]], packer: Packer, *, now_too: bool = False) -> int:
        """Pack `items` here, hand them to the loop; how many were public records."""
        now = datetime.now(UTC)
        packed = [p for p in (packer.pack(item, now) for item in items) if p is not None]
        if packed:
            self._loop.call_soon_threadsafe(self._take, packed, now_too)
        return len(packed)

    def _list(self) -> str:
        """Every object, page by page (never the whole inventory's JSON at once); the list's version.

        A page is packed in a thread of its own while the next one is asked for (the API server's time
        and ours overlap); at most `PAGES_AHEAD` pages wait to be packed."""
        token: str | None = None
        first = not self._listed.is_set()
        started = time.monotonic()
        packer = Packer(self._resolver.cache.settings.tag_ttl)
        waiting: deque[Future[int]] = deque()

        def packed(done: Future[int]) -> None:
            public = done.result()
            if first:
                self.public += public

        with ThreadPoolExecutor(1, thread_name_prefix="distroguard ImageFacts pack") as packing:
            while True:
                more = {"_continue": token} if token else {}
                response = self._list_call(limit=PAGE_SIZE, _preload_content=False, **more)
                page = orjson.loads(response.data)
                while len(waiting) >= PAGES_AHEAD:
                    packed(waiting.popleft())
                waiting.append(packing.submit(self._hand_over, page.get("items") or (), packer))
                metadata = page.get("metadata") or {}
                token = metadata.get("continue")
                if not token:
                    break
            for pending in waiting:
                packed(pending)
        if first:
            took = time.monotonic() - started
            logger.info("%d ImageFacts read into the cache in %.1f s", self.public, took)
            # A lookup that failed before the inventory was read may be answered by it now.
            self._loop.call_soon_threadsafe(self._resolver.cache.failures.clear)
        self._listed.set()
        return str(metadata["resourceVersion"])

    def changed(self, kind: str, metadata: Metadata) -> None:
        if kind != "DELETED":  # an unused image's facts stay true: the cache forgets them in its own time
            self._hand_over([metadata], self._packer, now_too=True)

    def not_served(self) -> None:
        logger.warning("ImageFacts are not served by this cluster: every image is looked up")
        self._listed.set()
