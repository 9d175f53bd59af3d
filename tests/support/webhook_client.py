"""A client for talking to distroguard's webhook server directly, the way a hostile or broken client would:
raw bytes over TLS (no normalisation of the path, any header, any Content-Length, chunked or not), and
a check that what comes back is a well-formed answer.

    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", name)
    endpoint = WebhookEndpoint.from_configuration(configuration)
    reply = endpoint.exchange(request_bytes("POST", "/pods", b"{not json"))
    answer = well_formed(reply)  # the AdmissionReview response, or None for an HTTP 4xx
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REVIEW_API_VERSION = "admission.k8s.io/v1"
REVIEW_KIND = "AdmissionReview"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class WebhookEndpoint:
    host: str
    port: int
    base_path: str
    """The URL path in front of the webhook ids (empty for `distroguard run --dev`)."""
    ca_pem: str

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any]) -> WebhookEndpoint:
        """The server behind a ValidatingWebhookConfiguration (its first webhook's `clientConfig`)."""
        client = configuration["webhooks"][0]["clientConfig"]
        url = urllib.parse.urlsplit(client["url"])
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            raise AssertionError(f"the tests talk to 127.0.0.1 only, not to {client['url']}")
        return cls(
            host="127.0.0.1",
            port=url.port,
            base_path=url.path.rsplit("/", 1)[0],
            ca_pem=base64.b64decode(client["caBundle"]).decode(),
        )

    def context(
        self, *, maximum: ssl.TLSVersion | None = None, minimum: ssl.TLSVersion | None = None
    ) -> ssl.SSLContext:
        """A client context trusting the webhook's CA, optionally pinned to a range of TLS versions."""
        ctx = ssl.create_default_context(cadata=self.ca_pem)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
        return ctx

    def path(self, webhook: str) -> str:
        return f"{self.base_path}/{webhook}"

    def connect(self, timeout: float = 30.0, context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
        """A TLS connection to the server, handshake done."""
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            return (context or self.context()).wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise

    def exchange(self, pieces: Iterable[bytes], timeout: float = 30.0, *, pause: float = 0.0) -> Reply:
        """Send `pieces` on a fresh connection (`pause` seconds apart, so that the server reads them
        separately) and read one response. Sending stops quietly when the server stops reading (it may
        answer, and close, before a body it refuses has been sent)."""
        with self.connect(timeout) as sock:
            for i, piece in enumerate(pieces):
                if i and pause:
                    time.sleep(pause)
                try:
                    sock.sendall(piece)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                    break
            return read_reply(sock)

    def post(
        self,
        webhook: str,
        body: bytes,
        *,
        content_type: str | None = "application/json",
        timeout: float = 30.0,
    ) -> Reply:
        return self.exchange(
            [request_bytes("POST", self.path(webhook), body, content_type=content_type)], timeout
        )

    def session(self, timeout: float = 30.0) -> http.client.HTTPSConnection:
        """A kept-alive connection for many requests in a row."""
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context())


def read_reply(sock: socket.socket) -> Reply:
    response = http.client.HTTPResponse(sock)
    with contextlib.closing(response):
        response.begin()
        body = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str | None = "application/json",
    content_length: int | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """One HTTP/1.1 request, byte for byte as given: the path is not normalised or quoted, and
    `content_length` may lie about the body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def chunked_head(method: str, path: str) -> bytes:
    """The headers of a chunked request (no Content-Length); follow with `chunk(...)` pieces."""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode("latin-1")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def well_formed(reply: Reply) -> dict[str, Any] | None:
    """The AdmissionReview response of a well-formed answer, or None for an HTTP 4xx refusal (400, or 405
    for a wrong method...); an AssertionError for anything else (a 5xx, another status, a body that is not
    an AdmissionReview)."""
    assert reply.status < 500, f"server error {reply.status}: {reply.text()[:500]}"
    if 400 <= reply.status < 500:
        return None
    assert reply.status == 200, f"unexpected status {reply.status}: {reply.text()[:500]}"
    document = json.loads(reply.body)
    assert isinstance(document, dict), document
    assert document.get("apiVersion") == REVIEW_API_VERSION, document
    assert document.get("kind") == REVIEW_KIND, document
    response = document.get("response")
    assert isinstance(response, dict), document
    assert isinstance(response.get("uid"), str), response
    assert isinstance(response.get("allowed"), bool), response
    if not response["allowed"]:
        status = response.get("status")
        assert isinstance(status, dict), response
        assert isinstance(status.get("code"), int), response
        assert isinstance(status.get("message"), str), response
        assert status["message"], response
    return response


def refused(reply: Reply, *, naming: str, uid: str = "") -> str:
    """Assert that `reply` refuses the request, saying `naming` (case-insensitive), echoing `uid`;
    returns what it said."""
    assert naming, "name what the refusal must say: every answer contains the empty string"
    response = well_formed(reply)
    if response is None:
        said = reply.text()
    else:
        assert response["allowed"] is False, f"garbage was allowed: {response}"
        assert response["uid"] == uid, response
        said = response["status"]["message"]
        assert response["status"]["code"] == 400, response
    assert naming.lower() in said.lower(), f"{said!r} does not say {naming!r}"
    return said
