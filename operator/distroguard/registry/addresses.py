"""Where names really point: the connection's own DNS answers, checked for token realms and, in the
cluster, for every connection.

`authflow.realm_refusal` judges a token realm from its URL's text. A public-looking name can still
resolve to the cloud metadata service or a cluster-internal address (a hostile registry controls its
challenge and may control that name's DNS). `GuardedResolver` is the aiohttp resolver of the registry
client's connector, so the addresses it judges are the very addresses the connection then uses (no second
lookup an attacker could answer differently). For a realm host it was told about (`guard`), it refuses
addresses in an internal network the realm's registry is not in: the registry's own addresses, as this
resolver saw them when the registry was asked, or its address as written. The metadata service is never
allowed this way.

In the cluster (`RegistrySettings.registry_guard`) an `AccessPolicy` judges every address a connection would
use, registries and redirect hops included: whoever creates a pod chooses the registry. Link-local
addresses, the metadata service and loopback are always refused, and so are the networks of
`ClusterNetworks` (the cluster's service and pod networks, learnt from the API, and `--registry-deny`'s);
`--registry-allow` opens any of them. Every other address is reachable, private ones included.

Through a forward proxy (`distroguard.proxies`) the connection goes to the proxy, and the proxy resolves the
target itself: the connector never looks the target up. `GuardedResolver.screen` therefore resolves it here
first and judges those addresses exactly as above (access policy, token realm), before the proxy is asked to
connect; a name that does not resolve here (the proxy's DNS may know names ours does not) passes unless its
text names an internal host, which the guard then refuses. The proxy's own address is not judged: the
operator chose it (`via`). What the proxy's DNS answers for a name is beyond our sight: a proxy should refuse
link-local and metadata destinations itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from distroguard.registry.hosts import host_class, literal_address

MAX_REMEMBERED = 4096
"""Hosts whose address kinds are remembered (a registry client talks to a handful)."""
SCREEN_TTL = 10.0
"""Seconds a host that passed `GuardedResolver.screen` passes again without a lookup (aiohttp's own DNS cache
keeps direct connections' answers as long)."""


class AddressRefused(OSError):
    """A token realm's name resolved into a network its registry is not in."""


class AddressNotAllowed(AddressRefused):
    """A registry (or a redirect, or a token realm) is at an address the cluster does not allow."""


ALWAYS_REFUSED = frozenset({"metadata", "link-local", "loopback"})
"""Address kinds (`hosts.host_class`) an `AccessPolicy` refuses unless allowed, in any cluster: the metadata
service and link-local addresses, and the pod's own loopback (its health and metrics ports). Other private
addresses are refused only in the networks of `ClusterNetworks` (an on-premises registry on 10.x is fine)."""
ALLOW_HINT = "allow it with --registry-allow {} (chart value registryAllow)"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Iterable[str], option: str) -> tuple[IPNetwork, ...]:
    """CIDRs or addresses; ValueError naming `option` and a bad entry."""
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{option} {entry!r}: expected a CIDR or an address") from None
    return tuple(networks)


class ClusterNetworks:
    """Networks refused besides `ALWAYS_REFUSED`: the cluster's service and pod networks, learnt from the API
    (`learn`, replaced whole by source as they change), and those the operator names (`--registry-deny`,
    for clusters whose networks cannot be read). `find` runs on the event loop for every connection while a
    watch thread calls `learn`: the published tuple is replaced whole, never changed in place."""

    def __init__(self, configured: Iterable[IPNetwork] = ()) -> None:
        self._by_source: dict[str, tuple[IPNetwork, ...]] = {"--registry-deny": tuple(configured)}
        self._published: tuple[tuple[IPNetwork, str], ...] = ()
        self._publish()

    def learn(self, source: str, networks: Iterable[IPNetwork]) -> None:
        """`source` (e.g. "service network") now holds exactly `networks`."""
        by_source = dict(self._by_source)
        given = list(networks)
        v4 = [n for n in given if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in given if isinstance(n, ipaddress.IPv6Network)]
        by_source[source] = (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))
        self._by_source = by_source
        self._publish()

    def networks(self, source: str) -> tuple[IPNetwork, ...]:
        return self._by_source.get(source, ())

    def find(self, address: IPAddress) -> tuple[IPNetwork, str] | None:
        """The refused network `address` is in and where it came from, or None."""
        for network, source in self._published:
            if address in network:
                return network, source
        return None

    def _publish(self) -> None:
        self._published = tuple(
            (network, source) for source, networks in self._by_source.items() for network in networks
        )


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Which addresses registry connections may reach in the cluster: any but the `ALWAYS_REFUSED` kinds and
    the `refused` networks (the cluster's own), except where `networks` or `hosts` allow them. Judged on the
    addresses a name resolves to, by the connection's own resolver, so a name cannot point somewhere else
    at connection time."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    refused: ClusterNetworks = field(default_factory=ClusterNetworks)

    @classmethod
    def parse(cls, entries: Iterable[str], refused: ClusterNetworks | None = None) -> AccessPolicy:
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
        return cls(tuple(networks), frozenset(hosts), refused if refused is not None else ClusterNetworks())

    def allows_host(self, host: str) -> bool:
        return host.strip("[]").rstrip(".").lower() in self.hosts

    def refusal(self, address: str) -> str | None:
        """Why a connection to `address` (an IP address as text) is refused, or None."""
        ip = literal_address(address.split("%", 1)[0])
        if ip is None:
            return None
        if any(ip in network for network in self.networks):
            return None
        kind = host_class(str(ip))
        if ip.is_unspecified:  # connecting to 0.0.0.0 or :: reaches this host
            kind = "loopback"
        if kind in ALWAYS_REFUSED:
            return f"registry address not allowed: {ip} is a {kind} address; " + ALLOW_HINT.format(ip)
        found = self.refused.find(ip)
        if found is None:
            return None
        network, source = found
        where = f"refused by {source}" if source.startswith("--") else f"the cluster's {source}"
        return f"registry address not allowed: {ip} is in {network} ({where}); " + ALLOW_HINT.format(ip)


Kinds = frozenset[str | None]

#: The proxy (host, port) the current task's request connects to, whose lookup is not judged.
_proxy_endpoint: ContextVar[tuple[str, int] | None] = ContextVar("_proxy_endpoint", default=None)


class GuardedResolver(AbstractResolver):
    def __init__(self, inner: AbstractResolver | None = None, access: AccessPolicy | None = None) -> None:
        """`inner`: the resolver asked (aiohttp's default, made on first use: it needs a running loop);
        `access`: the addresses every connection may reach (None: any, as on the command line)."""
        self._inner = inner
        self.access = access
        self._kinds: dict[str, Kinds] = {}
        self._realms: dict[str, str] = {}
        self._screened: dict[str, float] = {}

    def guard(self, realm_host: str, registry_host: str) -> None:
        """Check `realm_host`'s addresses against `registry_host`'s when it is next resolved."""
        if len(self._realms) >= MAX_REMEMBERED:
            self._realms.clear()
        self._realms[realm_host.lower()] = registry_host.lower()
        self._screened.pop(realm_host.lower(), None)  # now a realm: judged anew

    def literal_refusal(self, host: str) -> str | None:
        """Why a connection to `host` is refused before any lookup, or None: an address written out (aiohttp
        connects to those without asking a resolver; the legacy forms are resolved to themselves) or a
        metadata service name, judged by `access`."""
        if self.access is None or self.access.allows_host(host):
            return None
        bare = host.strip("[]").split("%", 1)[0]
        if literal_address(bare) is None:
            if host_class(bare) == "metadata":
                return "registry address not allowed: the cloud metadata service; " + ALLOW_HINT.format(
                    "169.254.169.254"
                )
            return None
        return self.access.refusal(bare)

    @contextmanager
    def via(self, host: str, port: int) -> Iterator[None]:
        """Within the block, this task's connection goes to the proxy `host:port`: its lookup is not judged
        (the operator chose the proxy; the target was judged by `screen`)."""
        token = _proxy_endpoint.set((host.strip("[]").lower(), port))
        try:
            yield
        finally:
            _proxy_endpoint.reset(token)

    async def screen(self, host: str, port: int = 0) -> None:
        """Judge `host` as a connection to it would be judged, for a request a proxy connects on our behalf:
        AddressNotAllowed or AddressRefused as `resolve` raises them. A name that does not resolve here is
        left to the proxy, unless the access policy is on and its text names an internal host."""
        if literal_address(host.strip("[]").split("%", 1)[0]) is not None:
            refused = self.literal_refusal(host)  # an address is judged as written, without a lookup
            if refused:
                raise AddressNotAllowed(refused)
            return
        now = asyncio.get_running_loop().time()
        if self._screened.get(host.lower(), 0.0) > now:
            return
        try:
            await self._judged(host, port, socket.AF_UNSPEC)
        except AddressRefused:
            raise
        except OSError:
            bare = host.strip("[]").rstrip(".").lower()
            if self.access is not None and not self.access.allows_host(host) and host_class(bare) is not None:
                raise AddressNotAllowed(
                    f"registry address not allowed: {bare} does not resolve here and names an internal "
                    "host, which a proxy would reach in its own network; " + ALLOW_HINT.format(bare)
                ) from None
        if len(self._screened) >= MAX_REMEMBERED:
            self._screened.clear()
        self._screened[host.lower()] = now + SCREEN_TTL

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        if _proxy_endpoint.get() == (host.strip("[]").lower(), port):
            if self._inner is None:
                self._inner = DefaultResolver()
            return await self._inner.resolve(host, port, family)
        return await self._judged(host, port, family)

    async def _judged(self, host: str, port: int, family: Any) -> list[ResolveResult]:
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
