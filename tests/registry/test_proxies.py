"""The registry client through a forward proxy (support.forward_proxy) to real docker-registries.

Registries are named `*.proxied.test`: the proxy maps those names to 127.0.0.1 (loopback hosts are never
proxied), and the client's own DNS is a table, so a test decides what each name resolves to on each side.

- Requests go through the proxy; a TLS registry's credentials travel inside the CONNECT tunnel, where the
  proxy sees ciphertext only; the proxy gets its own credentials, and no password is logged.
- NO_PROXY sends a registry direct (host, domain suffix, host:port).
- A proxy that refuses (403, 407) or cannot be reached fails the lookup with an error naming the proxy
  (password blanked out), well within the deadline.
- The address guard and the token-realm check still hold: the target is resolved here and judged before
  the proxy is asked; nothing reaches the proxy for a refused address.
- Credentials are never sent through a proxy over plain HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from distroguard.errors import (
    DeadlineExceeded,
    InsecureRegistryError,
    RegistryAddressRefused,
    RegistryError,
    RegistryUnreachable,
)
from distroguard.model import ImageRef
from distroguard.proxies import ProxyEnvironment
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver import Resolver
from support import certs, tls
from support.distros import DEBIAN_12_ROOT
from support.forward_proxy import ForwardProxy
from support.images import ImageBuilder, push
from support.registry_server import (
    TEST_PASSWORD,
    TEST_USER,
    RegistryServer,
    htpasswd_line,
    running_registry,
)

pytestmark = pytest.mark.registry
NAME = "registry.proxied.test"
PROXY_USER, PROXY_PASSWORD = "proxy-user", "proxy-secret-password"
DEADLINE = 30.0


class Table(AbstractResolver):
    """The client's DNS: answers from a table; other names do not resolve (nothing leaves the machine)."""

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


@pytest.fixture(scope="module")
def ca() -> certs.Issued:
    """The CA of the registry's certificate and of the https:// proxy's."""
    return certs.new_ca("distroguard proxy test CA")


@pytest.fixture(scope="module")
def named_registry(ca: certs.Issued) -> Iterator[RegistryServer]:
    """A registry over HTTPS with basic auth, whose certificate names `NAME` (and 127.0.0.1 for pushing)."""

    def prepare(server: RegistryServer) -> dict[str, Any]:
        leaf = certs.issue(ca, NAME, ip_sans=["127.0.0.1"], dns_sans=[NAME])
        pki = tls.TestPKI(server.root / "ca.pem", server.root / "server.pem", server.root / "server-key.pem")
        certs.write_cert(pki.ca_pem, ca.cert)
        leaf.write(pki.cert_pem, pki.key_pem)
        server.tls = pki
        (server.root / "htpasswd").write_text(htpasswd_line(TEST_USER, TEST_PASSWORD))
        return {"htpasswd": {"realm": "distroguard-test", "path": str(server.root / "htpasswd")}}

    with running_registry(
        prepare=prepare, kind="tls-basic", username=TEST_USER, password=TEST_PASSWORD
    ) as server:
        yield server


@pytest.fixture(scope="module")
def pushed(named_registry: RegistryServer) -> str:
    """A repository holding a Debian 12 image tagged 1."""
    assert named_registry.tls is not None
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    repo = "proxied/app"
    asyncio.run(
        push(
            named_registry.url,
            repo,
            "1",
            image,
            auth=named_registry.push_auth,
            ssl_context=named_registry.tls.client_context(),
        )
    )
    return repo


@pytest.fixture
async def proxy(named_registry: RegistryServer) -> AsyncIterator[ForwardProxy]:
    running = await ForwardProxy({NAME: "127.0.0.1"}, credentials=(PROXY_USER, PROXY_PASSWORD)).start()
    yield running
    await running.stop()


def hostport(server: RegistryServer) -> str:
    return f"{NAME}:{server.port}"


def client(
    server: RegistryServer,
    environ: dict[str, str],
    *,
    dns: dict[str, list[str]] | None = None,
    credentials: bool = True,
    **settings: Any,
) -> RegistryClient:
    assert server.tls is not None
    store = CredentialStore({hostport(server): Credentials(TEST_USER, TEST_PASSWORD)} if credentials else {})
    return RegistryClient(
        RegistrySettings(proxies=ProxyEnvironment.from_environ(environ), **settings),
        store,
        ssl_context=server.tls.client_context(),
        dns=Table(dns if dns is not None else {NAME: ["127.0.0.1"]}),
    )


def deadline() -> float:
    return asyncio.get_running_loop().time() + DEADLINE


async def test_requests_go_through_the_proxy_and_credentials_stay_in_the_tunnel(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    environ = {"HTTPS_PROXY": proxy.url(PROXY_USER, PROXY_PASSWORD), "NO_PROXY": ".svc,.cluster.local"}
    async with client(named_registry, environ) as registry:
        facts = await Resolver(registry).resolve(f"{hostport(named_registry)}/{pushed}:1")
    assert facts.os is not None
    assert facts.os.id == "debian"
    assert proxy.seen, "nothing went through the proxy"
    assert {seen.method for seen in proxy.seen} == {"CONNECT"}
    assert {seen.target for seen in proxy.seen} == {hostport(named_registry)}
    registry_basic = base64.b64encode(f"{TEST_USER}:{TEST_PASSWORD}".encode())
    for seen in proxy.seen:
        assert seen.headers["proxy-authorization"].startswith("Basic ")  # the proxy's own credentials
        assert "authorization" not in seen.headers  # the registry's never reach the proxy in clear
        assert registry_basic not in seen.tunnelled
        assert TEST_PASSWORD.encode() not in seen.tunnelled
        assert b"/v2/" not in seen.tunnelled  # TLS: the proxy reads not even the path
    assert any(seen.tunnelled for seen in proxy.seen)
    assert PROXY_PASSWORD not in caplog.text
    assert TEST_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    "no_proxy",
    [
        NAME,
        ".proxied.test",
        "proxied.test",
        "*.proxied.test",
        f"{NAME}:{{port}}",
        "10.0.0.0/8, PROXIED.TEST.",
    ],
)
async def test_no_proxy_goes_direct(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy, no_proxy: str
) -> None:
    environ = {
        "HTTPS_PROXY": proxy.url(PROXY_USER, PROXY_PASSWORD),
        "NO_PROXY": no_proxy.format(port=named_registry.port),
    }
    async with client(named_registry, environ) as registry:
        ref = ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1")
        assert await registry.head_digest(ref)
    assert proxy.seen == []


@pytest.mark.parametrize("no_proxy", ["other.test", f"{NAME}:1", "127.0.0.0/8"])
async def test_no_proxy_that_does_not_match_leaves_the_proxy(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy, no_proxy: str
) -> None:
    environ = {"https_proxy": proxy.url(PROXY_USER, PROXY_PASSWORD), "no_proxy": no_proxy}
    async with client(named_registry, environ) as registry:
        assert await registry.head_digest(ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"))
    assert proxy.seen
    assert {(seen.method, seen.target) for seen in proxy.seen} == {("CONNECT", hostport(named_registry))}


@pytest.mark.parametrize(
    ("refuse", "user", "password", "said"),
    [
        (403, PROXY_USER, PROXY_PASSWORD, "refused a tunnel to {target}: HTTP 403 Forbidden"),
        (None, None, None, "refused a tunnel to {target}: HTTP 407 Proxy Authentication Required"),
        (None, PROXY_USER, "wrong-proxy-password", "refused a tunnel to {target}: HTTP 407"),
    ],
)
async def test_a_proxy_that_refuses_is_named_at_once(
    named_registry: RegistryServer,
    pushed: str,
    refuse: int | None,
    user: str | None,
    password: str | None,
    said: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refusing = await ForwardProxy(
        {NAME: "127.0.0.1"}, refuse=refuse, credentials=(PROXY_USER, PROXY_PASSWORD)
    ).start()
    try:
        environ = {"HTTPS_PROXY": refusing.url(user, password)}
        async with client(named_registry, environ) as registry:
            with pytest.raises(RegistryError) as caught:
                await registry.head_digest(
                    ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"), deadline=deadline()
                )
    finally:
        await refusing.stop()
    message = str(caught.value)
    shown = f"http://{'***@' if user else ''}127.0.0.1:{refusing.port}"
    assert f"the proxy {shown} " + said.format(target=hostport(named_registry)) in message
    assert refusing.methods() == ["CONNECT"]  # a refusal is not retried
    for secret in (PROXY_PASSWORD, "wrong-proxy-password", TEST_PASSWORD):
        assert secret not in message
        assert secret not in caplog.text


async def test_an_https_proxy(
    named_registry: RegistryServer, pushed: str, ca: certs.Issued, tmp_path: Path
) -> None:
    """TLS to the proxy, and the registry's TLS inside it: the proxy's credentials are encrypted too."""
    leaf = certs.issue(ca, "127.0.0.1", ip_sans=["127.0.0.1"])
    leaf.write(tmp_path / "proxy.pem", tmp_path / "proxy-key.pem")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "proxy.pem", tmp_path / "proxy-key.pem")
    secure = await ForwardProxy(
        {NAME: "127.0.0.1"}, credentials=(PROXY_USER, PROXY_PASSWORD), tls=context
    ).start()
    try:
        environ = {"HTTPS_PROXY": secure.url(PROXY_USER, PROXY_PASSWORD)}
        assert environ["HTTPS_PROXY"].startswith("https://")
        async with client(named_registry, environ) as registry:
            assert await registry.head_digest(ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"))
    finally:
        await secure.stop()
    assert secure.seen
    assert {(seen.method, seen.target) for seen in secure.seen} == {("CONNECT", hostport(named_registry))}
    assert all(TEST_PASSWORD.encode() not in seen.tunnelled for seen in secure.seen)


async def test_a_proxy_that_cannot_be_reached_is_named(named_registry: RegistryServer, pushed: str) -> None:
    closed = await ForwardProxy().start()
    await closed.stop()  # its port now refuses connections
    environ = {"HTTPS_PROXY": closed.url(PROXY_USER, PROXY_PASSWORD)}
    async with client(named_registry, environ, max_retries=2, backoff_initial=0.01) as registry:
        with pytest.raises(RegistryUnreachable) as caught:
            await registry.head_digest(
                ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"), deadline=deadline()
            )
    message = str(caught.value)
    assert f"the proxy http://***@127.0.0.1:{closed.port} cannot be reached" in message
    assert "gave up after 3 attempts" in message
    assert PROXY_PASSWORD not in message


# ---------------------------------------------------------------------- the address guard through a proxy


@pytest.mark.parametrize(
    ("dns", "why"),
    [
        ({NAME: ["127.0.0.1"]}, "127.0.0.1 is a loopback address"),
        ({NAME: ["169.254.1.1"]}, "169.254.1.1 is a link-local address"),
        ({NAME: ["93.184.216.10", "169.254.169.254"]}, "169.254.169.254 is a metadata address"),
    ],
)
async def test_a_refused_address_is_refused_through_the_proxy_too(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy, dns: dict[str, list[str]], why: str
) -> None:
    environ = {"HTTPS_PROXY": proxy.url(PROXY_USER, PROXY_PASSWORD)}
    async with client(named_registry, environ, dns=dns, registry_guard=True) as registry:
        with pytest.raises(RegistryAddressRefused, match=why):
            await registry.head_digest(
                ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"), deadline=deadline()
            )
    assert proxy.seen == []  # judged before the proxy was asked


async def test_the_allow_list_opens_a_refused_address_through_the_proxy(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy
) -> None:
    environ = {"HTTPS_PROXY": proxy.url(PROXY_USER, PROXY_PASSWORD)}
    async with client(named_registry, environ, registry_guard=True, registry_allow=(NAME,)) as registry:
        assert await registry.head_digest(ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"))
    assert proxy.seen
    assert set(proxy.methods()) == {"CONNECT"}


async def test_a_proxy_on_a_refused_address_is_still_used(
    named_registry: RegistryServer, pushed: str, proxy: ForwardProxy
) -> None:
    """The operator chose the proxy: its own address (here a name resolving to loopback) is not judged, while
    a registry at that same address would be refused."""
    environ = {"HTTPS_PROXY": f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.proxied.test:{proxy.port}"}
    dns = {NAME: ["93.184.216.10"], "proxy.proxied.test": ["127.0.0.1"]}
    async with client(named_registry, environ, dns=dns, registry_guard=True) as registry:
        assert await registry.head_digest(ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"))
        with pytest.raises(RegistryAddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
            await registry.head_digest(ImageRef.parse(f"proxy.proxied.test:{proxy.port}/app:1"))
    assert proxy.seen
    assert {(seen.method, seen.target) for seen in proxy.seen} == {("CONNECT", hostport(named_registry))}


async def test_a_name_only_the_proxy_resolves(named_registry: RegistryServer, proxy: ForwardProxy) -> None:
    """Our DNS does not know the name: a public-looking one is left to the proxy, an internal-looking one is
    refused in the cluster (the proxy would resolve it in its own network)."""
    environ = {"HTTPS_PROXY": proxy.url(PROXY_USER, PROXY_PASSWORD)}
    async with client(named_registry, environ, dns={}, registry_guard=True, max_retries=0) as registry:
        with pytest.raises(RegistryAddressRefused, match="does not resolve here and names an internal host"):
            await registry.head_digest(ImageRef.parse("vault.corp.internal/app:1"), deadline=deadline())
        assert proxy.seen == []
        with pytest.raises(RegistryError, match="HTTP 502 Bad Gateway"):  # the proxy knows no such name
            await registry.head_digest(ImageRef.parse("unknown.example.com/app:1"), deadline=deadline())
    assert [(s.method, s.target) for s in proxy.seen] == [("CONNECT", "unknown.example.com:443")]


class Challenger:
    """A plain-HTTP registry stand-in whose every answer is a bearer challenge naming `realm`."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> Challenger:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        challenge = f'Bearer realm="{self.realm}",service="evil"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})


@pytest.mark.parametrize("guard", [False, True])
async def test_a_token_realm_resolving_inward_is_refused_through_the_proxy(guard: bool) -> None:
    """The registry resolves (here) to a public address, its realm to a private one: refused, on the
    command line as in the cluster, although only the proxy connects."""
    challenger = await Challenger("https://tokens.proxied.test/token").start()
    proxy = await ForwardProxy({NAME: "127.0.0.1"}).start()
    try:
        settings = RegistrySettings(
            proxies=ProxyEnvironment.from_environ({"HTTP_PROXY": proxy.url(), "HTTPS_PROXY": proxy.url()}),
            insecure_registries=frozenset({f"{NAME}:{challenger.port}"}),
            registry_guard=guard,
        )
        dns = Table({NAME: ["93.184.216.10"], "tokens.proxied.test": ["10.1.2.3"]})
        async with RegistryClient(settings, dns=dns) as registry:
            with pytest.raises(InsecureRegistryError, match=r"the token realm resolves to 10\.1\.2\.3"):
                await registry.head_digest(
                    ImageRef.parse(f"{NAME}:{challenger.port}/app:1"), deadline=deadline()
                )
    finally:
        await proxy.stop()
        await challenger.stop()
    # The registry's anonymous try went through the proxy; nothing was asked of the realm.
    assert [(s.method, s.target) for s in proxy.seen] == [
        ("HEAD", f"http://{NAME}:{challenger.port}/v2/app/manifests/1")
    ]


async def test_credentials_are_not_sent_through_a_proxy_over_plain_http(
    basic_registry: RegistryServer,
) -> None:
    proxy = await ForwardProxy({NAME: "127.0.0.1"}).start()
    try:
        target = f"{NAME}:{basic_registry.port}"
        settings = RegistrySettings(
            proxies=ProxyEnvironment.from_environ({"HTTP_PROXY": proxy.url()}),
            insecure_registries=frozenset({target}),
        )
        store = CredentialStore({target: Credentials(TEST_USER, TEST_PASSWORD)})
        async with RegistryClient(settings, store, dns=Table({NAME: ["127.0.0.1"]})) as registry:
            with pytest.raises(InsecureRegistryError, match="credentials are not sent through the proxy"):
                await registry.head_digest(ImageRef.parse(f"{target}/app:1"), deadline=deadline())
    finally:
        await proxy.stop()
    assert proxy.seen, "the anonymous try went through the proxy"
    assert all("authorization" not in seen.headers for seen in proxy.seen)


async def test_a_proxy_that_never_answers_is_named_when_the_deadline_passes(
    named_registry: RegistryServer, pushed: str
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        environ = {"HTTPS_PROXY": f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"}
        async with client(named_registry, environ) as registry:
            loop = asyncio.get_running_loop()
            with pytest.raises(DeadlineExceeded) as caught:
                await registry.head_digest(
                    ImageRef.parse(f"{hostport(named_registry)}/{pushed}:1"), deadline=loop.time() + 1.0
                )
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    message = str(caught.value)
    assert f"through the proxy http://***@127.0.0.1:{port}" in message
    assert PROXY_PASSWORD not in message
    assert accepted  # the proxy was connected to
