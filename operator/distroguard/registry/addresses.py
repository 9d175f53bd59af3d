"""Where names really point: the connection's own DNS answers, checked for token realms.

`authflow.realm_refusal` judges a token realm from its URL's text. A public-looking name can still
resolve to the cloud metadata service or a cluster-internal address (a hostile registry controls its
challenge and may control that name's DNS). `GuardedResolver` is the aiohttp resolver of the registry
client's connector, so the addresses it judges are the very addresses the connection then uses (no second
lookup an attacker could answer differently). For a realm host it was told about (`guard`), it refuses
addresses in an internal network the realm's registry is not in: the registry's own addresses, as this
resolver saw them when the registry was asked, or its address as written. The metadata service is never
allowed this way.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from distroguard.registry.hosts import host_class

MAX_REMEMBERED = 4096
"""Hosts whose address kinds are remembered (a registry client talks to a handful)."""


class AddressRefused(OSError):
    """A token realm's name resolved into a network its registry is not in."""


Kinds = frozenset[str | None]


class GuardedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver | None = None) -> None:
        """`inner`: the resolver asked (aiohttp's default, made on first use: it needs a running loop)."""
        self._inner = inner
        self._kinds: dict[str, Kinds] = {}
        self._realms: dict[str, str] = {}

    def guard(self, realm_host: str, registry_host: str) -> None:
        """Check `realm_host`'s addresses against `registry_host`'s when it is next resolved."""
        if len(self._realms) >= MAX_REMEMBERED:
            self._realms.clear()
        self._realms[realm_host.lower()] = registry_host.lower()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()
        found = await self._inner.resolve(host, port, family)
        key = host.lower()
        kinds: Kinds = frozenset(host_class(str(item["host"])) for item in found)
        if len(self._kinds) >= MAX_REMEMBERED:
            self._kinds.clear()
        self._kinds[key] = kinds
        registry = self._realms.get(key)
        if registry is not None:
            refusal = self._refusal(host, found, kinds, registry)
            if refusal:
                raise AddressRefused(refusal)
        return found

    def _refusal(self, host: str, found: list[ResolveResult], kinds: Kinds, registry: str) -> str | None:
        allowed = self._kinds.get(registry, frozenset({host_class(registry)}))
        for item in found:
            kind = host_class(str(item["host"]))
            if kind == "metadata" or (kind is not None and kind not in allowed):
                return (
                    f"the token realm resolves to {item['host']}, a {kind} address, while its "
                    f"registry {registry} is not on one"
                )
        return None

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
