"""A forward HTTP proxy on 127.0.0.1 recording what a proxy sees: CONNECT tunnels, absolute-URI requests.

`ForwardProxy` speaks just enough HTTP/1.1 for the clients under test (aiohttp):

- `CONNECT host:port`: answers 200 and pipes bytes both ways; everything the client sends through the tunnel
  is kept (`Seen.tunnelled`), so a test can show what the proxy could read there (TLS: nothing useful);
- `GET http://host:port/path`: forwards the request in origin form with `Connection: close`, streams the
  answer back and closes; the proxy sees every header (`Seen.headers`).

It resolves nothing: `hosts` maps the names it may connect to onto local addresses (a DNS of its own), and
any other name gets 502, so no test traffic leaves the machine. It can refuse every request (`refuse`) or
demand Basic proxy credentials (`credentials`, 407 without them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from distroguard.registry.hosts import split_host


@dataclass
class Seen:
    """One request as the proxy saw it."""

    method: str
    target: str
    """`host:port` for CONNECT, the absolute URL otherwise."""
    headers: dict[str, str]
    """Lower-cased names."""
    tunnelled: bytearray = field(default_factory=bytearray)
    """Bytes the client sent through a CONNECT tunnel."""


class ForwardProxy:
    def __init__(
        self,
        hosts: Mapping[str, str] | None = None,
        *,
        refuse: int | None = None,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: a server context, for an `https://` proxy (clients speak TLS to the proxy itself)."""
        self.tls = tls
        self.hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        self.refuse = refuse
        self.credentials = credentials
        self.seen: list[Seen] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{user}:{password}@" if user is not None else ""
        return f"{'https' if self.tls else 'http'}://{userinfo}127.0.0.1:{self.port}"

    async def start(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def methods(self) -> list[str]:
        return [seen.method for seen in self.seen]

    # ------------------------------------------------------------------ one connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed a kept-alive connection
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            seen = Seen(method, target, headers)
            self.seen.append(seen)
            if self.refuse is not None:
                await _reply(writer, self.refuse)
                return
            if self.credentials is not None and headers.get("proxy-authorization") != _basic(
                *self.credentials
            ):
                await _reply(writer, 407, {"Proxy-Authenticate": 'Basic realm="test proxy"'})
                if method == "CONNECT":
                    return
                await _skip_body(reader, headers)
                continue
            if method == "CONNECT":
                await self._tunnel(reader, writer, seen)
                return
            await self._forward(reader, writer, seen)
            return

    def _upstream(self, host: str) -> str | None:
        return self.hosts.get(host.lower())

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        host, port = split_host(seen.target)
        address = self._upstream(host)
        if address is None or port is None:
            await _reply(writer, 502)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(address, port)
        except OSError:
            await _reply(writer, 502)
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, up_writer, seen.tunnelled), _pipe(up_reader, writer, None))
        finally:
            up_writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        url = urlsplit(seen.target)
        address = self._upstream(url.hostname or "")
        if url.scheme != "http" or address is None:
            await _skip_body(reader, seen.headers)
            await _reply(writer, 502)
            return
        body = await _read_body(reader, seen.headers)
        try:
            up_reader, up_writer = await asyncio.open_connection(address, url.port or 80)
        except OSError:
            await _reply(writer, 502)
            return
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        kept = {k: v for k, v in seen.headers.items() if not k.startswith("proxy-") and k != "connection"}
        request = f"{seen.method} {path} HTTP/1.1\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in kept.items()) + "connection: close\r\n\r\n"
        up_writer.write(request.encode("latin-1") + body)
        await up_writer.drain()
        try:
            await _pipe(up_reader, writer, None)
        finally:
            up_writer.close()


class ThreadedForwardProxy:
    """A `ForwardProxy` on a thread and event loop of its own, for clients in another process."""

    def __init__(self, proxy: ForwardProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forward-proxy", daemon=True)

    def start(self) -> ForwardProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=10)
        return self.proxy

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _reply(writer: asyncio.StreamWriter, status: int, headers: Mapping[str, str] | None = None) -> None:
    lines = [f"HTTP/1.1 {status} Proxy Says No", "Content-Length: 0"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


async def _skip_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> None:
    await _read_body(reader, headers)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, keep: bytearray | None) -> None:
    """Copy until `source` ends, then end `sink`'s writing side."""
    try:
        while chunk := await source.read(64 * 1024):
            if keep is not None:
                keep += chunk
            sink.write(chunk)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()
