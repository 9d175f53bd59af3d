"""The EOL client through a forward proxy (support.forward_proxy) to the local endoflife.date stand-in.

The API is named `eol.proxied.test`, which only the proxy knows (it maps it to 127.0.0.1): a request that did
not go through the proxy could not reach it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import date
from urllib.parse import urlsplit

import pytest

from distroguard.eol import bundled_snapshot
from distroguard.eol.refresh import RefreshSettings, fetch_snapshot
from distroguard.errors import CatalogUpdateError
from distroguard.proxies import ProxyEnvironment
from support.eol_api import EolApiServer
from support.forward_proxy import ForwardProxy

TODAY = date(2026, 11, 28)
PRODUCTS = {p.name: p for p in bundled_snapshot().products}
FEW = ["debian", "python", "moved"]
NAME = "eol.proxied.test"
USER, PASSWORD = "eol-proxy-user", "eol-proxy-secret"


@pytest.fixture
def api() -> Iterator[EolApiServer]:
    running = EolApiServer(dict(PRODUCTS)).start()
    yield running
    running.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    running = await ForwardProxy({NAME: "127.0.0.1"}, credentials=(USER, PASSWORD)).start()
    yield running
    await running.stop()


def through(proxy_url: str, base_url: str, no_proxy: str = "") -> RefreshSettings:
    environ = {"HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "NO_PROXY": no_proxy}
    return RefreshSettings(
        base_url=base_url, deadline=10.0, backoff=0.01, proxies=ProxyEnvironment.from_environ(environ)
    )


async def test_the_refresh_goes_through_the_proxy(
    api: EolApiServer, proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base = f"http://{NAME}:{urlsplit(api.url).port}"
    snapshot = await fetch_snapshot(FEW, through(proxy.url(USER, PASSWORD), base, ".svc,127.0.0.1"), TODAY)
    assert [p.name for p in snapshot.products] == FEW
    assert snapshot.products[0] == PRODUCTS["debian"]
    seen = sorted(s.target for s in proxy.seen)
    assert seen == sorted(f"{base}/api/v1/products/{p}" for p in [*FEW, "debian"])  # "moved" redirects
    assert all(s.headers["proxy-authorization"].startswith("Basic ") for s in proxy.seen)
    assert PASSWORD not in caplog.text


async def test_no_proxy_leaves_the_proxy_out(api: EolApiServer, proxy: ForwardProxy) -> None:
    # The stand-in is on loopback (always direct); NO_PROXY=* says the same for every host.
    snapshot = await fetch_snapshot(["debian"], through(proxy.url(USER, PASSWORD), api.url, "*"), TODAY)
    assert [p.name for p in snapshot.products] == ["debian"]
    assert proxy.seen == []


@pytest.mark.parametrize(
    ("refuse", "password", "said"),
    [
        (403, PASSWORD, "the proxy http://***@127.0.0.1:{port} refused a tunnel: HTTP 403 Forbidden"),
        (None, "wrong-eol-secret", "the proxy http://***@127.0.0.1:{port} refused a tunnel: HTTP 407"),
    ],
)
async def test_a_refusing_proxy_is_named(refuse: int | None, password: str, said: str) -> None:
    refusing = await ForwardProxy({NAME: "127.0.0.1"}, refuse=refuse, credentials=(USER, PASSWORD)).start()
    try:
        with pytest.raises(CatalogUpdateError) as caught:
            await fetch_snapshot(["debian"], through(refusing.url(USER, password), f"https://{NAME}"), TODAY)
    finally:
        await refusing.stop()
    message = str(caught.value)
    assert message.startswith(f"cannot reach https://{NAME}/api/v1/products/debian: ")
    assert said.format(port=refusing.port) in message
    assert password not in message
    assert refusing.methods() == ["CONNECT"] * 3  # the refresh's attempts, then the error


async def test_an_unreachable_proxy_is_named() -> None:
    closed = await ForwardProxy().start()
    await closed.stop()
    with pytest.raises(CatalogUpdateError) as caught:
        await fetch_snapshot(["debian"], through(closed.url(USER, PASSWORD), f"https://{NAME}"), TODAY)
    message = str(caught.value)
    assert f"the proxy http://***@127.0.0.1:{closed.port} cannot be reached" in message
    assert PASSWORD not in message
