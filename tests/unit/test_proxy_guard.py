"""The address guard with a proxy: the target screened here, the proxy's own address left alone, and the
transport's choice of route per URL (CIDR entries included: the registry tests cannot reach a non-loopback
address, and loopback is never proxied)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from distroguard.proxies import ProxyEnvironment
from distroguard.registry.addresses import AccessPolicy, AddressNotAllowed, AddressRefused, GuardedResolver
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.transport import Transport
from support.forward_proxy import ForwardProxy


class Table(AbstractResolver):
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            {"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        return None


DNS = {
    "registry.example.com": ["93.184.216.10"],
    "inward.example.com": ["10.96.0.10"],
    "squid.proxy.svc": ["127.0.0.1"],
    "auth.example.com": ["10.1.2.3"],
}


def guarded() -> tuple[GuardedResolver, Table]:
    table = Table(DNS)
    return GuardedResolver(table, AccessPolicy.parse(["10.1.0.0/16"])), table


async def test_screening_judges_the_target_and_remembers_a_pass_briefly() -> None:
    resolver, table = guarded()
    await resolver.screen("registry.example.com", 443)
    await resolver.screen("registry.example.com", 443)
    assert table.asked == ["registry.example.com"]  # the second pass came from memory
    with pytest.raises(AddressNotAllowed, match="loopback"):
        await resolver.screen("squid.proxy.svc", 3128)
    with pytest.raises(AddressNotAllowed, match=r"169\.254\.169\.254 is a metadata address"):
        await resolver.screen("169.254.169.254", 80)  # an address: judged as written
    assert "169.254.169.254" not in table.asked


async def test_a_host_made_a_realm_is_judged_again() -> None:
    resolver, _ = guarded()
    await resolver.screen("registry.example.com", 443)
    await resolver.screen("auth.example.com", 443)  # allowed by the policy (10.1.0.0/16), and remembered
    resolver.guard("auth.example.com", "registry.example.com")
    with pytest.raises(AddressRefused, match=r"the token realm resolves to 10\.1\.2\.3"):
        await resolver.screen("auth.example.com", 443)


async def test_names_our_dns_does_not_know() -> None:
    resolver, _ = guarded()
    await resolver.screen("only-the-proxy-knows.example.com", 443)  # public-looking: left to the proxy
    for name in ("vault.corp.internal", "kubernetes", "api.team.svc.cluster.local"):
        with pytest.raises(AddressNotAllowed, match="does not resolve here and names an internal host"):
            await resolver.screen(name, 443)
    await GuardedResolver(Table({}), None).screen("kubernetes", 443)  # no guard (command line): left alone


async def test_the_proxys_own_lookup_is_not_judged() -> None:
    resolver, _ = guarded()
    with resolver.via("Squid.Proxy.Svc", 3128):
        assert await resolver.resolve("squid.proxy.svc", 3128)
        with pytest.raises(AddressNotAllowed):  # another port of the same host is not the proxy
            await resolver.resolve("squid.proxy.svc", 80)
    with pytest.raises(AddressNotAllowed):  # outside the request, a registry there is refused as ever
        await resolver.resolve("squid.proxy.svc", 3128)


@pytest.mark.parametrize(
    ("url", "proxied"),
    [
        ("https://registry.example.com/v2/", True),
        ("https://10.20.30.40:5000/v2/", False),  # NO_PROXY 10.0.0.0/8
        ("https://[fd00::5]/v2/", False),  # NO_PROXY fd00::/8
        ("https://harbor.corp.example/v2/", False),  # .corp.example
        ("https://corp.example/v2/", False),
        ("https://notcorp.example/v2/", True),
        ("https://registry.internal:5000/v2/", False),  # registry.internal:5000
        ("https://registry.internal/v2/", True),  # another port
        ("http://plain.example.com:5000/v2/", False),  # no HTTP_PROXY
        ("https://127.0.0.1:5000/v2/", False),  # loopback
    ],
)
def test_the_transport_routes_each_url(url: str, proxied: bool) -> None:
    environ = {
        "HTTPS_PROXY": "http://proxy:3128",
        "NO_PROXY": "10.0.0.0/8,fd00::/8,.corp.example,registry.internal:5000",
    }
    transport = Transport(RegistrySettings(proxies=ProxyEnvironment.from_environ(environ)))
    assert (transport.proxy_for(URL(url)) is not None) is proxied


def test_settings_compare_by_their_proxies() -> None:
    one = RegistrySettings(proxies=ProxyEnvironment.from_environ({"HTTPS_PROXY": "proxy:3128"}))
    assert one == RegistrySettings(proxies=ProxyEnvironment.from_environ({"HTTPS_PROXY": "proxy:3128"}))
    assert hash(one) == hash(
        RegistrySettings(proxies=ProxyEnvironment.from_environ({"HTTPS_PROXY": "proxy:3128"}))
    )
    assert one != RegistrySettings()


# ---------------------------------------------------------------------- each redirect hop routed anew


async def test_each_redirect_hop_chooses_its_own_route() -> None:
    """A registry behind the proxy sends a blob to storage that NO_PROXY reaches directly: the proxy sees the
    registry's request only."""
    seen_by_storage: list[dict[str, str]] = []

    async def storage(request: web.Request) -> web.Response:
        seen_by_storage.append(dict(request.headers))
        return web.Response(body=b"blob")

    storage_app = web.Application()
    storage_app.router.add_get("/blob", storage)
    storage_runner = web.AppRunner(storage_app)
    await storage_runner.setup()
    storage_site = web.TCPSite(storage_runner, "127.0.0.1", 0)
    await storage_site.start()
    storage_port = int(storage_runner.addresses[0][1])

    async def registry(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://storage.direct.test:{storage_port}/blob")

    registry_app = web.Application()
    registry_app.router.add_get("/v2/app/blobs/x", registry)
    registry_runner = web.AppRunner(registry_app)
    await registry_runner.setup()
    await web.TCPSite(registry_runner, "127.0.0.1", 0).start()
    registry_port = int(registry_runner.addresses[0][1])

    proxy = await ForwardProxy({"registry.proxied.test": "127.0.0.1"}).start()
    environ = {"HTTP_PROXY": proxy.url(), "NO_PROXY": ".direct.test"}
    target = f"registry.proxied.test:{registry_port}"
    settings = RegistrySettings(
        proxies=ProxyEnvironment.from_environ(environ),
        insecure_registries=frozenset({target, f"storage.direct.test:{storage_port}"}),
    )
    transport = Transport(settings, resolver=Table({"storage.direct.test": ["127.0.0.1"]}))
    await transport.open()
    try:
        response = await transport.send(
            "GET", URL(f"http://{target}/v2/app/blobs/x"), registry=target, what="blob", headers={}
        )
        assert await response.read() == b"blob"
        response.release()
    finally:
        await transport.close()
        await proxy.stop()
        await registry_runner.cleanup()
        await storage_runner.cleanup()
    assert [(s.method, s.target) for s in proxy.seen] == [("GET", f"http://{target}/v2/app/blobs/x")]
    assert len(seen_by_storage) == 1  # reached directly
