"""A counting (and, on demand, misbehaving) HTTP proxy in front of a real registry.

    proxy = await make_proxy(registry.url)
    ... point a client at proxy.address ...
    assert proxy.count("GET", "blobs") == 1

It records (method, path, status, bytes, request headers) for every request. Hooks run first and
may answer instead of the registry: `fail(n, status)`, `redirect_blobs(to)`,
`drop_after(upstream, n_bytes)`, or any `async def hook(request) -> web.StreamResponse | None`.
Runs on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

Hook = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
# Hop-by-hop headers are the proxy's own business, not the registry's.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    status: int
    bytes: int
    headers: CIMultiDictProxy[str]

    @property
    def kind(self) -> str:
        """`manifests`, `blobs`, `uploads`, `base` (/v2/) or `other`."""
        parts = self.path.split("/")
        if "uploads" in parts:
            return "uploads"
        for kind in ("manifests", "blobs"):
            if kind in parts:
                return kind
        return "base" if self.path.rstrip("/") == "/v2" else "other"


@dataclass
class CountingProxy:
    upstream: str
    upstream_auth: str | None = None
    """An `Authorization` value the proxy adds upstream (a storage host with its own access)."""
    hooks: list[Hook] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        return sum(
            1
            for r in self.records
            if (method is None or r.method == method) and (kind is None or r.kind == kind)
        )

    def bytes_sent(self, kind: str | None = None) -> int:
        return sum(r.bytes for r in self.records if kind is None or r.kind == kind)

    async def start(self) -> CountingProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Handlers still running at the end (a stalled response) are cancelled, not waited for.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        for hook in self.hooks:
            answer = await hook(request)
            if answer is not None:
                size = answer.body_length if hasattr(answer, "body_length") else 0
                self.records.append(Record(request.method, request.path, answer.status, size, headers))
                return answer
        assert self._session is not None
        forward = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if self.upstream_auth is not None:
            forward["Authorization"] = self.upstream_auth
        body = await request.read()
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.rel_url}",
            headers=forward,
            data=io.BytesIO(body) if body else None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            sent = 0
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                    sent += len(chunk)
            await response.write_eof()
        self.records.append(Record(request.method, request.path, upstream.status, sent, headers))
        return response


# ---------------------------------------------------------------------- fault hooks


def fail(
    times: int,
    status: int = 503,
    *,
    kind: str | None = None,
    retry_after: str | None = None,
) -> Hook:
    """Answer `status` to the first `times` requests (of `kind`: "manifests" or "blobs", if
    given).
    """
    left = [times]

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if kind is not None and f"/{kind}/" not in request.path:
            return None
        if left[0] <= 0:
            return None
        left[0] -= 1
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return web.Response(status=status, text="injected failure", headers=headers)

    return hook


def redirect_blobs(to: str, status: int = 307) -> Hook:
    """Send blob GETs to `to` + the same path (as registries send them to storage)."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if request.method == "GET" and "/blobs/sha256:" in request.path:
            return web.Response(status=status, headers={"Location": f"{to}{request.rel_url}"})
        return None

    return hook


def drop_after(upstream: str, n_bytes: int, *, kind: str = "blobs", times: int = 1) -> Hook:
    """Serve the first `times` GETs of `kind` ("blobs" or "manifests") partially: the registry's
    headers (Content-Length included) and `n_bytes` of the body, then cut the connection."""
    left = [times]

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if request.method != "GET" or f"/{kind}/" not in request.path or left[0] <= 0:
            return None
        left[0] -= 1
        forward = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(f"{upstream}{request.rel_url}", headers=forward) as answer,
        ):
            data = await answer.read()
            headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:n_bytes])
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.close()
        return response

    return hook


def drop_blob_after(upstream: str, n_bytes: int, times: int = 1) -> Hook:
    return drop_after(upstream, n_bytes, kind="blobs", times=times)


@pytest.fixture
async def make_proxy() -> AsyncIterator[Callable[..., Awaitable[CountingProxy]]]:
    """`await make_proxy(upstream_url, hooks=[...], upstream_auth=...)`; all stopped after the
    test.
    """
    proxies: list[CountingProxy] = []

    async def make(upstream: str, **options: object) -> CountingProxy:
        proxy = CountingProxy(upstream, **options)  # type: ignore[arg-type]
        proxies.append(proxy)
        return await proxy.start()

    yield make
    for proxy in proxies:
        await proxy.stop()
