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

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from distroguard.registry.hosts import host_class

MAX_REMEMBERED = 4096
"""Hosts whose address kinds are remembered (a registry client talks to a handful)."""


class AddressRefused(OSError):
    """A token realm's name resolved into a network its registry is not in."""


class AddressNotAllowed(AddressRefused):
    """A registry (or a redirect, or a token realm) is at an address the cluster does not allow."""


REFUSED_KINDS = frozenset({"metadata", "link-local", "loopback", "internal"})
"""Address kinds (`hosts.host_class`) refused by an `AccessPolicy` unless allowed: the metadata service and
link-local addresses, the pod's own loopback (its health and metrics ports), and private, carrier-grade NAT
and cluster-internal addresses (where the cluster's service and pod networks are)."""
ALLOW_HINT = "allow it with --registry-allow {} (chart value registryAllow)"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Which addresses registry connections may reach in the cluster: any public one, and the refused kinds
    only where `networks` or `hosts` allow them. Judged on the addresses a name resolves to, by the
    connection's own resolver, so a name cannot point somewhere else at connection time."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AccessPolicy:
        """`CIDR`, an address, or a `HOST` name each; ValueError naming a bad one."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            text = entry.strip().lower().strip("[]")
            if not text:
                raise ValueError("an empty --registry-allow entry")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if "/" in text or ":" in text or not all(part for part in text.rstrip(".").split(".")):
                raise ValueError(f"--registry-allow {entry!r}: expected a CIDR, an address or a host name")
            hosts.add(text.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.strip("[]").rstrip(".").lower() in self.hosts

    def refusal(self, address: str) -> str | None:
        """Why a connection to `address` (an IP address as text) is refused, or None."""
        kind = host_class(address)
        if kind not in REFUSED_KINDS:
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            ip = None
        if ip is not None:
            if ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if any(ip in network for network in self.networks):
                return None
        return f"registry address not allowed: {address} is a {kind} address; " + ALLOW_HINT.format(address)


Kinds = frozenset[str | None]


class GuardedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver | None = None, access: AccessPolicy | None = None) -> None:
        """`inner`: the resolver asked (aiohttp's default, made on first use: it needs a running loop);
        `access`: the addresses every connection may reach (None: any, as on the command line)."""
        self._inner = inner
        self.access = access
        self._kinds: dict[str, Kinds] = {}
        self._realms: dict[str, str] = {}

    def guard(self, realm_host: str, registry_host: str) -> None:
        """Check `realm_host`'s addresses against `registry_host`'s when it is next resolved."""
        if len(self._realms) >= MAX_REMEMBERED:
            self._realms.clear()
        self._realms[realm_host.lower()] = registry_host.lower()

    def literal_refusal(self, host: str) -> str | None:
        """Why a connection to `host` is refused before any lookup, or None: an address written out (aiohttp
        connects to those without asking a resolver) or a metadata service name, judged by `access`."""
        if self.access is None or self.access.allows_host(host):
            return None
        bare = host.strip("[]")
        try:
            ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            if host_class(bare) == "metadata":
                return "registry address not allowed: the cloud metadata service; " + ALLOW_HINT.format(
                    "169.254.169.254"
                )
            return None
        return self.access.refusal(bare)

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        refused = self.literal_refusal(host)
        if refused:
            raise AddressNotAllowed(refused)
        if self._inner is None:
            self._inner = DefaultResolver()
        found = await self._inner.resolve(host, port, family)
        if self.access is not None and not self.access.allows_host(host):
            for item in found:
                refused = self.access.refusal(str(item["host"]))
                if refused:
                    raise AddressNotAllowed(refused)
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
