"""Registry credentials of one pod: its `imagePullSecrets` and its service account's, read from the pod's
own namespace only, in a worker thread, reused for a short time.

Secret contents are never logged: a problem names the secret, never its data. What is handed on is a
`CredentialStore` (whose repr lists registries only) and a fingerprint of the secrets' contents, so that
credentials that change get a fresh registry client and cache (see `pool`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes

from distroguard.errors import InvalidCredentials
from distroguard.operator.threadcache import ThreadedTTLCache
from distroguard.registry.credentials import CredentialStore

logger = logging.getLogger(__name__)

Key = tuple[str, tuple[str, ...], str]
"""(namespace, the pod's pull secret names, its service account)."""


@dataclass(frozen=True, slots=True)
class PullCredentials:
    store: CredentialStore = field(default_factory=CredentialStore)
    fingerprint: str = ""
    """sha256 over the secrets used (names, types, data); "" without any."""


NO_CREDENTIALS = PullCredentials()


class PullSecrets:
    def __init__(self, api: Any, *, ttl: float) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._cache: ThreadedTTLCache[Key, PullCredentials] = ThreadedTTLCache(self._read, ttl=ttl)

    async def get(self, namespace: str, secrets: Sequence[str], service_account: str) -> PullCredentials:
        return await self._cache.get((namespace, tuple(secrets), service_account))

    def _read(self, key: Key) -> PullCredentials:
        """Runs in a worker thread."""
        namespace, names, service_account = key
        wanted = dict.fromkeys(names)
        account = self._get(self._core.read_namespaced_service_account, service_account, namespace)
        if account is not None:
            wanted.update(dict.fromkeys(ref.name for ref in account.image_pull_secrets or () if ref.name))
        stores: list[CredentialStore] = []
        digest = hashlib.sha256()
        for name in wanted:
            secret = self._get(self._core.read_namespaced_secret, name, namespace)
            if secret is None:
                logger.info("image pull secret %s/%s does not exist", namespace, name)
                continue
            data = secret.data or {}
            try:
                store = CredentialStore.from_kubernetes_secret(
                    secret.type or "", data, source=f"secret {namespace}/{name}"
                )
            except InvalidCredentials as exc:  # the message names the secret and key, never the data
                logger.warning("image pull secret skipped: %s", exc)
                continue
            digest.update(json.dumps([name, secret.type, data], sort_keys=True).encode())
            stores.append(store)
        if not stores:
            return NO_CREDENTIALS
        # The first secret listed wins for a registry, as with the kubelet's first successful pull.
        return PullCredentials(stores[-1].merged(*reversed(stores[:-1])), digest.hexdigest())

    @staticmethod
    def _get(read: Any, name: str, namespace: str) -> Any:
        try:
            return read(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
