"""Registry credentials of one pod: its `imagePullSecrets` and its service account's, read from the pod's
own namespace only, in a worker thread, reused for a short time.

Secret contents are never logged: a problem names the secret, never its data. What is handed on is a
`CredentialStore` (whose repr lists registries only) and a fingerprint of the secrets' contents, so that
credentials that change get a fresh registry client and cache (see `distroguard.resolver.routing`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import kubernetes

from distroguard.operator.threadcache import ThreadedTTLCache
from distroguard.registry.credentials import PullSecret, from_pull_secrets
from distroguard.resolver.routing import NO_CREDENTIALS, PullCredentials

logger = logging.getLogger(__name__)

Key = tuple[str, tuple[str, ...], str]
"""(namespace, the pod's pull secret names, its service account)."""


class PullSecrets:
    def __init__(self, api: Any, *, ttl: float) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._cache: ThreadedTTLCache[Key, PullCredentials] = ThreadedTTLCache(self._read, ttl=ttl)

    async def cancel(self) -> None:
        """Cancel the reads under way (the process is stopping)."""
        await self._cache.cancel()

    async def get(self, namespace: str, secrets: Sequence[str], service_account: str) -> PullCredentials:
        return await self._cache.get((namespace, tuple(secrets), service_account))

    def _read(self, key: Key) -> PullCredentials:
        """Runs in a worker thread."""
        namespace, names, service_account = key
        wanted = dict.fromkeys(names)
        account = self._get(self._core.read_namespaced_service_account, service_account, namespace)
        if account is not None:
            wanted.update(dict.fromkeys(ref.name for ref in account.image_pull_secrets or () if ref.name))

        def read() -> Iterator[PullSecret]:
            for name in wanted:
                secret = self._get(self._core.read_namespaced_secret, name, namespace)
                if secret is None:
                    logger.info("image pull secret %s/%s does not exist", namespace, name)
                    continue
                yield name, secret.type or "", secret.data or {}

        problems: list[str] = []
        store, fingerprint = from_pull_secrets(read(), namespace, problems)
        for problem in problems:  # the message names the secret and key, never the data
            logger.warning("image pull secret skipped: %s", problem)
        return NO_CREDENTIALS if store is None else PullCredentials(store, fingerprint)

    @staticmethod
    def _get(read: Any, name: str, namespace: str) -> Any:
        try:
            return read(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
