"""A token realm's name is judged by the addresses it resolves to, as the connection uses them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from distroguard.errors import InsecureRegistryError, RegistryAddressRefused
from distroguard.registry.addresses import (
    AccessPolicy,
    AddressNotAllowed,
    AddressRefused,
    ClusterNetworks,
    GuardedResolver,
    parse_networks,
)
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.transport import Transport


class Table(AbstractResolver):
    """DNS answers from a table (nothing leaves the machine)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {"hostname": host, "host": ip, "port": port, "family": family, "proto": 0, "flags": 0}
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        return None


# Answers only: no test connects to any of these addresses but 127.0.0.1.
DNS = {
    "registry.example.com": ["93.184.216.10"],
    "corp-registry.example.com": ["10.1.2.3"],
    "auth.example.com": ["93.184.216.11"],
    "sneaky.example.com": ["93.184.216.12", "10.9.9.9"],
    "metadata.example.com": ["169.254.169.254"],
    "loop.example.com": ["127.0.0.1"],
}


async def test_a_realm_resolving_into_a_network_its_registry_is_not_in_is_refused() -> None:
    resolver = GuardedResolver(Table(DNS))
    await resolver.resolve("registry.example.com")  # the registry was asked first (its challenge)
    for realm in ("sneaky.example.com", "metadata.example.com", "loop.example.com"):
        resolver.guard(realm, "registry.example.com")
        with pytest.raises(AddressRefused, match="the token realm resolves to"):
            await resolver.resolve(realm)
    resolver.guard("auth.example.com", "registry.example.com")
    assert [r["host"] for r in await resolver.resolve("auth.example.com")] == ["93.184.216.11"]


async def test_a_registry_on_a_private_network_may_keep_its_token_server_there() -> None:
    resolver = GuardedResolver(Table(DNS))
    await resolver.resolve("corp-registry.example.com")
    resolver.guard("sneaky.example.com", "corp-registry.example.com")
    assert len(await resolver.resolve("sneaky.example.com")) == 2
    # ... but never the metadata service.
    resolver.guard("metadata.example.com", "corp-registry.example.com")
    with pytest.raises(AddressRefused, match="a metadata address"):
        await resolver.resolve("metadata.example.com")
    # A registry written as an address (never resolved) is judged by it.
    resolver.guard("loop.example.com", "127.0.0.1")
    assert await resolver.resolve("loop.example.com")


async def test_hosts_not_guarded_resolve_as_they_are() -> None:
    resolver = GuardedResolver(Table(DNS))
    assert await resolver.resolve("metadata.example.com")  # a registry's own name: the text rules apply


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[str]]]:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.host)
        return web.json_response({"token": "t"})

    app = web.Application()
    app.router.add_get("/token", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, seen
    await runner.cleanup()


async def test_the_transport_refuses_at_once_and_never_connects(server: tuple[int, list[str]]) -> None:
    port, seen = server
    table = Table({"realm.example.com": ["127.0.0.1"], "fine.example.com": ["127.0.0.1"]})
    transport = Transport(RegistrySettings(max_retries=5), resolver=table)
    await transport.open()
    try:
        transport.resolver.guard("realm.example.com", "registry.example.com")
        with pytest.raises(InsecureRegistryError, match=r"resolves to 127\.0\.0\.1, a loopback address"):
            await transport.send(
                "GET",
                URL(f"http://realm.example.com:{port}/token"),
                registry="registry.example.com",
                what="token",
                headers={},
            )
        assert table.asked == ["realm.example.com"]  # refused once, not retried
        assert seen == []
        response = await transport.send(
            "GET", URL(f"http://fine.example.com:{port}/token"), registry="r", what="token", headers={}
        )
        response.release()
        assert seen == [f"fine.example.com:{port}"]  # the same path works for a name not guarded
    finally:
        await transport.close()


# ---------------------------------------------------------------------- registries refused in the cluster

CLUSTER_DNS = {
    "registry.example.com": ["93.184.216.10"],
    "metadata.example.com": ["169.254.169.254"],
    "link.example.com": ["169.254.7.7"],
    "loop.example.com": ["127.0.0.1"],
    "svc.example.com": ["10.96.0.10"],
    "pod.example.com": ["10.244.1.9"],
    "harbor.harbor.svc.cluster.local": ["10.96.44.1"],
    "mixed.example.com": ["93.184.216.12", "10.244.1.9"],
    "zero.example.com": ["0.0.0.0"],
    "corp.example.com": ["10.1.2.3"],
    "corp.internal": ["192.168.7.7"],
    "cgnat.example.com": ["100.64.3.4"],
}


def cluster(*, deny: tuple[str, ...] = ()) -> ClusterNetworks:
    """The networks of a cluster with services on 10.96.0.0/12 and pods on 10.244.0.0/16 (two Nodes)."""
    refused = ClusterNetworks(parse_networks(deny, "--registry-deny"))
    refused.learn("service network", [ipaddress.ip_network("10.96.0.0/12")])
    refused.learn(
        "pod network", [ipaddress.ip_network("10.244.1.0/24"), ipaddress.ip_network("10.244.0.0/24")]
    )
    return refused


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("metadata.example.com", "169.254.169.254 is a metadata address"),
        ("link.example.com", "169.254.7.7 is a link-local address"),
        ("loop.example.com", "127.0.0.1 is a loopback address"),
        ("zero.example.com", "0.0.0.0 is a loopback address"),
        ("svc.example.com", r"10.96.0.10 is in 10.96.0.0/12 \(the cluster's service network\)"),
        (
            "harbor.harbor.svc.cluster.local",
            r"10.96.44.1 is in 10.96.0.0/12 \(the cluster's service network\)",
        ),
        ("pod.example.com", r"10.244.1.9 is in 10.244.0.0/23 \(the cluster's pod network\)"),
        ("mixed.example.com", r"10.244.1.9 is in 10.244.0.0/23 \(the cluster.s pod network\)"),
        ("cgnat.example.com", r"100.64.3.4 is in 100.64.0.0/10 \(refused by --registry-deny\)"),
    ],
)
async def test_the_cluster_refuses_registries_in_its_own_networks(host: str, why: str) -> None:
    resolver = GuardedResolver(Table(CLUSTER_DNS), AccessPolicy(refused=cluster(deny=("100.64.0.0/10",))))
    with pytest.raises(AddressNotAllowed, match=rf"registry address not allowed: {why}; allow it with"):
        await resolver.resolve(host)
    assert await resolver.resolve("registry.example.com")


async def test_other_private_addresses_stay_allowed() -> None:
    """An on-premises registry on a private network outside the cluster's works with no configuration."""
    resolver = GuardedResolver(Table(CLUSTER_DNS), AccessPolicy(refused=cluster()))
    for host in ("corp.example.com", "corp.internal", "cgnat.example.com"):
        assert await resolver.resolve(host)
    for address in ("10.1.2.3", "192.168.4.5", "172.16.0.1", "fd12:3456::1"):
        assert resolver.literal_refusal(address) is None


async def test_learnt_networks_apply_to_every_later_connection() -> None:
    refused = ClusterNetworks()
    resolver = GuardedResolver(Table(CLUSTER_DNS), AccessPolicy(refused=refused))
    assert await resolver.resolve("svc.example.com")
    refused.learn("service network", [ipaddress.ip_network("10.96.0.0/12")])
    with pytest.raises(AddressNotAllowed, match="service network"):
        await resolver.resolve("svc.example.com")
    refused.learn("service network", [])  # the ServiceCIDR was deleted
    assert await resolver.resolve("svc.example.com")
    assert refused.networks("service network") == ()


async def test_names_and_addresses_of_the_metadata_service_are_refused_without_a_lookup() -> None:
    table = Table(CLUSTER_DNS)
    resolver = GuardedResolver(table, AccessPolicy(refused=cluster()))
    for host in (
        "metadata.google.internal",
        "metadata.google.internal.",
        "169.254.169.254",
        "2852039166",  # 169.254.169.254 in a legacy form
        "[fd00:ec2::254]",
        "[::ffff:169.254.169.254]",
        "100.100.100.200",
        "127.0.0.1",
        "0x7f.1",
        "[::1]",
        "0.0.0.0",
        "10.96.0.1",
        "10.244.0.7",
    ):
        with pytest.raises(AddressNotAllowed, match="--registry-allow"):
            await resolver.resolve(host)
    assert table.asked == []


async def test_the_allow_list_opens_networks_addresses_and_hosts() -> None:
    access = AccessPolicy.parse(
        ["10.96.0.0/16", "127.0.0.1", "harbor.harbor.svc.cluster.local"], refused=cluster()
    )
    resolver = GuardedResolver(Table(CLUSTER_DNS), access)
    assert await resolver.resolve("svc.example.com")  # 10.96.0.10 in the CIDR
    assert await resolver.resolve("loop.example.com")  # the address itself
    assert await resolver.resolve("harbor.harbor.svc.cluster.local")  # the host, whatever it resolves to
    for host in ("pod.example.com", "metadata.example.com", "mixed.example.com"):
        with pytest.raises(AddressNotAllowed):
            await resolver.resolve(host)


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "host", "10.0.0.0/8,"])
def test_a_bad_deny_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match="registry-deny"):
        parse_networks([entry], "--registry-deny")


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "host:5000", "a..b", "http://x"])
def test_a_bad_allow_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match="registry-allow"):
        AccessPolicy.parse([entry])


async def test_the_cli_keeps_every_address() -> None:
    """Without the guard (the command line: its user chose the image) nothing is refused."""
    resolver = GuardedResolver(Table(CLUSTER_DNS))
    for host in CLUSTER_DNS:
        assert await resolver.resolve(host)
    assert Transport(RegistrySettings()).resolver.access is None


async def test_a_literal_address_is_refused_before_connecting(server: tuple[int, list[str]]) -> None:
    port, seen = server
    transport = Transport(RegistrySettings(registry_guard=True, max_retries=5))
    await transport.open()
    try:
        with pytest.raises(
            RegistryAddressRefused, match=r"127\.0\.0\.1 is a loopback address.*--registry-allow"
        ):
            await transport.send(
                "GET",
                URL(f"http://127.0.0.1:{port}/token"),
                registry="127.0.0.1",
                what="manifest",
                headers={},
            )
        assert seen == []
    finally:
        await transport.close()
    allowed = Transport(RegistrySettings(registry_guard=True, registry_allow=("127.0.0.0/8",)))
    await allowed.open()
    try:
        response = await allowed.send(
            "GET", URL(f"http://127.0.0.1:{port}/token"), registry="127.0.0.1", what="manifest", headers={}
        )
        response.release()
        assert len(seen) == 1
    finally:
        await allowed.close()
