"""A counting (and, on demand, misbehaving) HTTP proxy in front of a real registry.

    proxy = await make_proxy(registry.url)
    ... point a client at proxy.address ...
    assert proxy.count("GET", "blobs") == 1

It records (method, path, status, bytes, request headers, when it arrived and was answered) for every
request. Hooks run first and may answer instead of the registry: `fail(n, status, retry_after=...)`,
`redirect_blobs(to)`, `redirect_loop()`, `drop_after(upstream, n_bytes, reset=...)`,
`trickle(upstream, bytes_per_second)`, `stall_after_headers(upstream)`, or any
`async def hook(request) -> web.StreamResponse | None`. `latency(rtt)` answers nothing: it holds every
request back, as a registry that far away would (put it first); `together(n)` holds the first blob
requests until n of them are under way at once. `sequential(records)` counts the round
trips a client made one after the other.
`garbage_server()` is no proxy but a TCP server answering every connection with garbage (a failed
TLS handshake). Runs on the test's own event loop; `ThreadedProxy` runs one on a thread of its own, for
synchronous tests (a registry that the process under test sees stop and come back on the same address).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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
    at: float = field(default_factory=time.monotonic)
    """When the answer was complete (monotonic clock)."""
    started: float | None = None
    """When the request arrived (monotonic clock; None: not known)."""

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
    arrived: int = 0
    """Requests received so far, counted as they arrive (`records` has them once answered)."""
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
        # A stopped proxy starts again on its old port: to clients, the registry went away and came back.
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
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
        started = time.monotonic()
        self.arrived += 1
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        for hook in self.hooks:
            answer = await hook(request)
            if answer is not None:
                size = answer.body_length if hasattr(answer, "body_length") else 0
                self.records.append(
                    Record(request.method, request.path, answer.status, size, headers, started=started)
                )
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
        self.records.append(
            Record(request.method, request.path, upstream.status, sent, headers, started=started)
        )
        return response


class ThreadedProxy:
    """A `CountingProxy` on an event loop of its own thread: `start()`, `stop()` (nothing listens on its
    port any more: connections are refused), `start()` again on the same port, `close()` at the end."""

    def __init__(self, upstream: str) -> None:
        self.proxy = CountingProxy(upstream)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return self.proxy.address

    def start(self) -> ThreadedProxy:
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def sequential(records: Iterable[Record]) -> int:
    """The most requests of `records` that ran one after the other (no two overlapping in time): the
    round trips a client waited for in a row, however many others it ran beside them."""
    count, free_from = 0, float("-inf")
    for record in sorted(records, key=lambda r: r.at):
        if record.started is None:
            raise ValueError("a record without its start time")
        if record.started >= free_from:
            count, free_from = count + 1, record.at
    return count


# ---------------------------------------------------------------------- fault hooks


def latency(rtt: float, *, handshake: bool = True) -> Hook:
    """Hold every request back `rtt` seconds, as a registry one round trip of `rtt` away answers later
    (the transfer itself is not slowed); with `handshake`, the first request of each new connection one
    round trip more (TCP's handshake), so that a client that keeps its connections pays it once."""
    seen: set[object] = set()

    async def hook(request: web.Request) -> web.StreamResponse | None:
        delay = rtt
        if handshake:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer not in seen:
                seen.add(peer)
                delay += rtt
        await asyncio.sleep(delay)
        return None

    return hook


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


def together(count: int, *, kind: str = "blobs", timeout: float = 10.0) -> Hook:
    """Hold the first requests of `kind` until `count` of them have arrived (or `timeout` seconds passed),
    then let them all through: requests a client sends side by side pass at once, requests it sends one
    after the other wait the whole timeout and come out in a row (`sequential` sees them so). Later
    requests pass unheld."""
    arrived = [0]
    everyone = asyncio.Event()

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if f"/{kind}/" not in request.path or everyone.is_set():
            return None
        arrived[0] += 1
        if arrived[0] >= count:
            everyone.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone.wait(), timeout)
        everyone.set()  # whoever timed out lets the others go too
        return None

    return hook


def redirect_blobs(to: str, status: int = 307) -> Hook:
    """Send blob GETs to `to` + the same path (as registries send them to storage)."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if request.method == "GET" and "/blobs/sha256:" in request.path:
            return web.Response(status=status, headers={"Location": f"{to}{request.rel_url}"})
        return None

    return hook


async def _upstream(upstream: str, request: web.Request) -> tuple[int, dict[str, str], bytes]:
    """The registry's whole answer to `request`: status, end-to-end headers, body."""
    forward = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(request.method, f"{upstream}{request.rel_url}", headers=forward) as answer,
    ):
        data = await answer.read()
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
    return answer.status, headers, data


async def _headers_only(upstream: str, request: web.Request) -> tuple[web.StreamResponse, bytes]:
    """A response prepared with the registry's status and headers (Content-Length included), and the
    body still to send."""
    status, headers, data = await _upstream(upstream, request)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(data)
    await response.prepare(request)
    return response, data


def _wanted(request: web.Request, kind: str, method: str = "GET") -> bool:
    return request.method == method and f"/{kind}/" in request.path


def drop_after(
    upstream: str, n_bytes: int, *, kind: str = "blobs", times: int = 1, reset: bool = False
) -> Hook:
    """Serve the first `times` GETs of `kind` ("blobs" or "manifests") partially: the registry's
    headers (Content-Length included) and `n_bytes` of the body, then cut the connection (with
    `reset`, a TCP reset instead of an orderly close)."""
    left = [times]

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if not _wanted(request, kind) or left[0] <= 0:
            return None
        left[0] -= 1
        response, data = await _headers_only(upstream, request)
        await response.write(data[:n_bytes])
        await asyncio.sleep(0.01)
        transport = request.transport
        assert transport is not None
        if reset:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        return response

    return hook


def trickle(upstream: str, bytes_per_second: float = 1.0, *, kind: str = "blobs") -> Hook:
    """Serve GETs of `kind` with the registry's headers, then the body at `bytes_per_second`."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if not _wanted(request, kind):
            return None
        response, data = await _headers_only(upstream, request)
        with contextlib.suppress(ConnectionError):
            for i in range(len(data)):
                await response.write(data[i : i + 1])
                await asyncio.sleep(1 / bytes_per_second)
        return response

    return hook


def stall_after_headers(upstream: str, *, kind: str = "manifests", seconds: float = 3600.0) -> Hook:
    """Answer GETs of `kind` with the registry's headers, then send nothing (until the client gives up
    or the proxy stops)."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        if not _wanted(request, kind):
            return None
        response, _ = await _headers_only(upstream, request)
        await asyncio.sleep(seconds)
        return response

    return hook


def redirect_loop(status: int = 307) -> Hook:
    """Redirect every request to the same path with `?loop=1`, and that back to `?loop=2`, forever."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        hop = "2" if request.query.get("loop") == "1" else "1"
        return web.Response(status=status, headers={"Location": f"{request.path}?loop={hop}"})

    return hook


@dataclass
class GarbageServer:
    """A TCP server on 127.0.0.1 that answers every connection with bytes that are neither TLS nor
    HTTP, then closes it."""

    port: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> GarbageServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError):
            await reader.read(1024)
            writer.write(b"\x00\xffgarbage, not a TLS server hello\r\n\r\n" * 4)
            await writer.drain()
        writer.close()


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


@pytest.fixture
async def garbage_server() -> AsyncIterator[GarbageServer]:
    server = await GarbageServer().start()
    yield server
    await server.stop()
