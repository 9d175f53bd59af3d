"""Namespace labels, for the opt-out label and the policies' namespace selectors: read through the
`kubernetes` client in a worker thread, reused for a short time (an opt-out takes effect within it)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import kubernetes

from distroguard.operator.threadcache import ThreadedTTLCache

_NONE: Mapping[str, str] = MappingProxyType({})


class NamespaceLabels:
    def __init__(self, api: Any, *, ttl: float) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._cache: ThreadedTTLCache[str, Mapping[str, str]] = ThreadedTTLCache(self._read, ttl=ttl)

    async def cancel(self) -> None:
        """Cancel the reads under way (the process is stopping)."""
        await self._cache.cancel()

    async def get(self, namespace: str) -> Mapping[str, str]:
        return await self._cache.get(namespace)

    def _read(self, namespace: str) -> Mapping[str, str]:
        """Runs in a worker thread."""
        try:
            found = self._core.read_namespace(namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:  # the API server refuses the object itself then
                return _NONE
            raise
        labels = found.metadata.labels if found.metadata else None
        return MappingProxyType(dict(labels or {}))
