"""The facts API on a port of its own (`--facts-port`), for when it must not share the webhook's.

A TLS context requires client certificates for the whole port or for none: the webhook's server cannot ask
Gatekeeper for its certificate on the facts paths and leave the API server alone on the review paths. With
`--facts-client-ca`, the facts API is served here, each connection's certificate verified against that CA
in the handshake (CERT_REQUIRED): a client without one never reaches a handler. The serving certificate is
the webhook's (the same files), and the listener starts again with fresh contexts when the certificate, key
or client CA files change, as the webhook's server does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp.web

from distroguard.operator.webhook.facts import FactsApi

logger = logging.getLogger(__name__)

MINIMUM_TLS = ssl.TLSVersion.TLSv1_2
"""As the webhook's server (Gatekeeper itself speaks TLS 1.3 only)."""


@dataclass(frozen=True, slots=True)
class FactsTls:
    cert_file: Path
    key_file: Path
    client_ca: Path | None = None
    """When set, every client must present a certificate signed by this CA (PEM)."""

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = MINIMUM_TLS
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca is not None:
            context.load_verify_locations(cafile=self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def digest(self) -> str:
        hasher = hashlib.sha256()
        for path in (self.cert_file, self.key_file, self.client_ca):
            if path is not None:
                hasher.update(path.read_bytes())
        return hasher.hexdigest()


class FactsServer:
    """Serves `api` on `addr:port` over TLS until cancelled; `port` 0 picks a free one (`bound` says
    which, once listening)."""

    def __init__(
        self, api: FactsApi, tls: FactsTls, *, addr: str, port: int, file_check_interval: float = 60.0
    ) -> None:
        self.api = api
        self.tls = tls
        self.addr = addr
        self.port = port
        self.file_check_interval = file_check_interval
        self.bound: int | None = None
        self.listening = asyncio.Event()

    async def serve(self) -> None:
        while True:
            initial = self.tls.digest()
            runner = aiohttp.web.AppRunner(
                self.api.app(), handle_signals=False, keepalive_timeout=self.api.limits.read_timeout
            )
            await runner.setup()
            try:
                # A socket of our own: its port is known at once, also when 0 asked for a free one.
                sock = _listening_socket(self.addr, self.port or self.bound or 0)
                self.bound = int(sock.getsockname()[1])
                site = aiohttp.web.SockSite(runner, sock, ssl_context=self.tls.context())
                await site.start()
                mode = "client certificates required" if self.tls.client_ca else "no client certificates"
                logger.info("serving the facts API at https://%s:%s (%s)", self.addr, self.bound, mode)
                self.listening.set()
                while True:
                    await asyncio.sleep(self.file_check_interval)
                    if self.tls.digest() != initial:
                        logger.info("facts API certificate files changed: serving with the new ones")
                        break
            finally:
                self.listening.clear()
                await runner.cleanup()


def _listening_socket(addr: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
