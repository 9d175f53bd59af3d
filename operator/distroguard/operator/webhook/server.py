"""The webhook server: kopf's aiohttp server (TLS, certificate files re-read when they change) answering
every review on one path: decode -> route -> admit -> respond.

What the edge adds, each answered with the request's uid whenever it could be read:

- a body limit (`MAX_BODY_BYTES`, above aiohttp's default 1 MiB: a Pod and its old version can be more);
- decoding with `decode_document` (a malformed review is refused with code 400, not an HTTP error page);
- a known path for the request's resource: an unknown path, or a resource sent to another resource's
  path, is refused, never allowed;
- recovery: an exception escaping the handler is logged with its stack trace and answered as our error
  (code 500);
- time bounds on reading a request (`READ_TIMEOUT_SECONDS`): aiohttp bounds neither a request body that
  never arrives (not at all) nor headers that trickle in (only by its hour-long keep-alive timeout), so
  a slow or stalled client (slowloris) would hold its connection and handler for ever;
- TLS 1.2 at least, stated here rather than left to Python's defaults, and no TLS 1.3 session tickets (no
  client of ours resumes a session);
- kept-alive connections retired after `MAX_CONNECTION_AGE_SECONDS`, so that a new replica gets its share
  of reviews, and every one after each answer once the pod is told to drain (`GET /drain` from inside the
  pod, the chart's preStop hook), so that a replica leaving the Service's endpoints stops receiving reviews
  before it stops (see there).

The decoded request goes to the server's `handler` (the operator's `Admitter`). kopf stays the framework: it
runs the operator, the watches and this server's start and stop (`settings.admission.server`), but not its
generic admission dispatch (`serve_admission_request`: a cause with kopf's dict views of the review, a deep
copy of the objects, handler selection, kwargs), which cost more than the rest of a warm admission together
in `bench/admission_bench.py` for nothing our handler uses.

kopf's own `WebhookServer.__call__` builds its aiohttp runner with default settings and no way to pass
others, so `AdmissionServer.__call__` does the same work itself (listen, yield the client configuration,
re-listen when the certificate files change) with the read timeout in place.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp.web
import kopf
import orjson

from distroguard.admission import AdmissionAnswer, AdmissionRequest, respond
from distroguard.admission.review import (
    MAX_BODY_BYTES,
    AdmissionReviewResponseWire,
    decode_document,
    respond_invalid,
)
from distroguard.errors import InvalidReview
from distroguard.operator.webhook.routes import BY_ID

logger = logging.getLogger(__name__)

ClientConfigHook = Callable[[dict[str, Any]], Awaitable[None]]

READ_TIMEOUT_SECONDS = 30.0
"""How long a client may take to send a request: its headers (counted from the connection's start, or from
the previous answer on a kept-alive connection; also how long an idle connection is kept), then, once they
are in, its whole body. No API server waits longer for a webhook (`timeoutSeconds` is at most 30), so a
request slower than this has nobody waiting for its answer; the API server itself sends a review at once."""
SHUTDOWN_GRACE_SECONDS = 5.0
"""When the server stops, how long answers in progress get to finish (one is bounded by the lookup budget,
3 s by default) before their connections are dropped; aiohttp's own 60 s would let a stalled client hold up
the operator's exit past a pod's termination grace period."""
MAX_CONNECTION_AGE_SECONDS = 30.0
"""A kept-alive connection is closed once it has carried requests for this long: its next answer says
`Connection: close`, and the client dials again. The API server pools its connections by the Service's
name, not by pod, so without this a replica added by a scale-out or a rollout would get no review until
some connection broke. After an answer is the one moment a close crosses nothing (a close that crosses a
review in flight loses the review: EOF, and with failurePolicy Ignore it is admitted unchecked). A replica
that is leaving retires its connections at once instead (`ConnectionAges.drain`), so this age only spreads
the load: one TLS handshake per connection every 30 s, where a short age for draining's sake cost one every
few seconds, the largest part of a warm review's server CPU at high connection counts."""
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2
"""TLS 1.0 and 1.1 are refused (the API server speaks 1.2 and 1.3)."""
SESSION_TICKETS = 0
"""TLS 1.3 session tickets sent after each handshake (OpenSSL's default: 2). The API server's webhook client
keeps no session cache, so it never resumes a session: a ticket would be made (encrypted, sent) for nothing,
on every connection, and connections are dialled again every `MAX_CONNECTION_AGE_SECONDS`."""


Handler = Callable[[AdmissionRequest], Awaitable[AdmissionAnswer]]
"""Answers a decoded request that passed the edge (the operator's `Admitter`)."""


class AdmissionServer(kopf.WebhookServer):
    """`kopf.WebhookServer` with distroguard's request edge, answering through `handler`;
    `on_client_config` is awaited with each client configuration the server yields (once listening, and
    after each certificate renewal)."""

    def __init__(
        self,
        *,
        handler: Handler,
        on_client_config: ClientConfigHook | None = None,
        routes: Sequence[aiohttp.web.RouteDef] = (),
        **kwargs: Any,
    ) -> None:
        """`routes`: more paths served beside the reviews' (the facts API), matched before them."""
        super().__init__(**kwargs)
        self.handler = handler
        self.on_client_config = on_client_config
        self.routes = routes
        self.ages = ConnectionAges(MAX_CONNECTION_AGE_SECONDS)
        """Kept across the restarts of a certificate renewal: a drain outlives the listener it began on."""

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        """Listen, yield the client configuration, and start again when the certificate files change
        (kopf's loop, with the read timeout set on aiohttp's runner and TLS 1.2 at least). kopf's `fn`, its
        generic dispatch, is not used: every review is answered by `handler`."""

        while True:
            cadata, context = self._build_ssl()
            if context is not None:
                if context.minimum_version < MINIMUM_TLS:
                    context.minimum_version = MINIMUM_TLS
                context.num_tickets = SESSION_TICKETS
            path = self.path.rstrip("/") if self.path else ""
            app = review_app(self.handler, path, ages=self.ages, routes=self.routes)
            # keepalive_timeout: aiohttp closes a connection whose request headers are not all in by then
            # (and an idle one); the body is bounded in `_answer`.
            runner = aiohttp.web.AppRunner(
                app,
                handle_signals=False,
                keepalive_timeout=READ_TIMEOUT_SECONDS,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            )
            await runner.setup()
            try:
                port = self.port or self._allocate_free_port()
                site = aiohttp.web.TCPSite(
                    runner, self.addr or None, port, ssl_context=context, reuse_port=True, reuse_address=True
                )
                await site.start()
                host = self.host or self.DEFAULT_HOST or self._get_accessible_addr(self.addr)
                url = self._build_url("http" if context is None else "https", host, port, self.path or "")
                client_config = kopf.WebhookClientConfig(url=url)
                if cadata is not None:
                    client_config["caBundle"] = base64.b64encode(cadata).decode("ascii")
                logger.info("serving admission webhooks at %s", url)
                if self.on_client_config is not None:
                    await self.on_client_config(dict(client_config))
                yield client_config
                await self._until_certificate_files_change()
                logger.info("certificate files changed: serving with the new ones")
            finally:
                await runner.cleanup()

    async def _until_certificate_files_change(self) -> None:
        """Return once the certificate, key or CA file reads differently (checked every
        `file_check_interval` seconds: a mounted Secret changes without any file-system event)."""
        paths = [Path(p) for p in (self.certfile, self.pkeyfile, self.cafile) if p is not None]

        def digest() -> str:
            hasher = hashlib.sha256()
            for path in paths:
                hasher.update(path.read_bytes())
            return hasher.hexdigest()

        initial = digest()
        while True:
            await asyncio.sleep(self.file_check_interval)
            if digest() != initial:
                return


def review_app(
    handler: Handler,
    path: str = "",
    ages: ConnectionAges | None = None,
    routes: Sequence[aiohttp.web.RouteDef] = (),
) -> aiohttp.web.Application:
    """The aiohttp application: every review, on `path/<route id>`, answered through `handler`; a
    connection past its age is closed after its answer (`MAX_CONNECTION_AGE_SECONDS`), and every one once
    `GET /drain` came from inside the pod. `routes` come first, so that their paths are theirs, not
    reviews'."""
    aged = ages if ages is not None else ConnectionAges(MAX_CONNECTION_AGE_SECONDS)

    async def drain(request: aiohttp.web.Request) -> aiohttp.web.Response:
        # Only the pod itself (its preStop hook, over loopback) may drain it: from elsewhere this would let
        # anyone who reaches the port make every review pay a TLS handshake.
        if not _from_loopback(request):
            return aiohttp.web.Response(status=403, text="drain is accepted from the pod itself only\n")
        aged.drain()
        return aiohttp.web.Response(text="draining: every connection is closed after its next answer\n")

    def serving(webhook_id: str | None) -> Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.Response]]:
        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            routed = request.match_info.get("id", "") if webhook_id is None else webhook_id
            response = _json_response(await answer(request, handler, routed))
            if aged.past_age(request):
                response.force_close()
            return response

        return serve

    app = aiohttp.web.Application()
    app.add_routes(routes)
    # Each webhook's own path is a plain route (found by a dict lookup); any other path is answered too,
    # as a refusal naming it (`answer`).
    app.add_routes([aiohttp.web.get(DRAIN_PATH, drain)])
    app.add_routes([aiohttp.web.post(f"{path}/{webhook_id}", serving(webhook_id)) for webhook_id in BY_ID])
    app.add_routes([aiohttp.web.post(f"{path}/{{id:.*}}", serving(None))])
    return app


DRAIN_PATH = "/drain"


def _from_loopback(request: aiohttp.web.BaseRequest) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    if not peer:
        return False
    try:
        return ipaddress.ip_address(str(peer[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class ConnectionAges:
    """How long each connection has carried requests, counted from its first one (by its transport,
    weakly: a closed connection is forgotten with it)."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._first: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()
        self.draining = False

    def drain(self) -> None:
        """From now on every connection is past its age: the replica is leaving the Service's endpoints."""
        self.draining = True

    def past_age(self, request: aiohttp.web.BaseRequest) -> bool:
        """Whether the connection of `request` has carried requests for `max_age` or longer, or the
        replica is draining."""
        transport = request.transport
        if transport is None or self.draining:
            return True
        now = self.clock()
        first = self._first.setdefault(transport, now)
        return now - first >= self.max_age


async def answer(request: aiohttp.web.Request, handler: Handler, path: str) -> AdmissionReviewResponseWire:
    """The response document to one HTTP request to the webhook path `path`: decode -> route -> `handler`
    -> respond."""
    try:
        body = _received(request)
        if body is None:
            # A body that trickles in or stalls (slowloris) would otherwise hold this handler for ever:
            # aiohttp bounds the time a request's headers take, not its body's.
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                body = await _read_body(request)
    except InvalidReview as exc:
        return respond_invalid(exc)
    except TimeoutError:
        return respond_invalid(InvalidReview(f"the body did not arrive within {READ_TIMEOUT_SECONDS:g} s"))
    except aiohttp.web.RequestPayloadError as exc:
        # A body aiohttp cannot decode (a broken chunked framing or Content-Encoding stream, e.g. an invalid
        # gzip or zstd body) is the client's fault, answered as a refusal with its uid, never an error page.
        reason = exc.__cause__ or exc
        return respond_invalid(InvalidReview(f"the body could not be read: {_one_line(reason)}"))
    if not body:
        return respond_invalid(InvalidReview("the body is empty"))
    try:
        decoded = decode_document(_parse(body))  # not decode_review: a JSON string would be parsed again
    except InvalidReview as exc:
        return respond_invalid(exc)
    except UnicodeDecodeError:
        return respond_invalid(InvalidReview("the body is not valid UTF-8"))
    except (ValueError, RecursionError):
        return respond_invalid(InvalidReview("the body is not valid JSON"))
    except Exception as exc:  # a decoding bug of ours: an error answer (logged), never a 500 page
        logger.exception("decoding an admission request failed")
        return respond("", AdmissionAnswer.error(f"{type(exc).__name__}: {exc}"))
    route = BY_ID.get(path)
    # Both groups: the kind's is what admission reads, the resource's is what the request is addressed to
    # (a Pod kind with resource batch/pods must not pass as a pod).
    if (
        route is None
        or decoded.resource_group is None
        or not route.accepts(decoded.kind.group, decoded.resource, decoded.sub_resource)
        or not route.accepts(decoded.resource_group, decoded.resource, decoded.sub_resource)
    ):
        what = decoded.resource + (f"/{decoded.sub_resource}" if decoded.sub_resource else "")
        message = f"distroguard does not check {what} at the path /{path}"
        return respond(decoded.uid, AdmissionAnswer.deny(message, code=400))
    try:
        return respond(decoded.uid, await handler(decoded))
    except Exception as exc:  # ours (the admitter answers its own failures: this is a last resort)
        logger.exception("answering admission request %s failed", decoded.uid)
        return respond(decoded.uid, AdmissionAnswer.error(f"{type(exc).__name__}: {exc}"))


def _parse(body: bytes) -> Any:
    """The body as JSON: with orjson (several times the standard library's speed on a review); what orjson
    refuses is parsed again by the standard library, so that bad input is refused with the same messages
    (invalid UTF-8, nesting too deep) and its extensions (NaN, Infinity) are accepted as before."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _json_response(document: Any) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=orjson.dumps(document), content_type="application/json")


def _one_line(error: BaseException) -> str:
    """aiohttp's message alone (its errors' text starts with a status code), on one line, shortened."""
    message = getattr(error, "message", None)
    text = " ".join((message if isinstance(message, str) and message else str(error)).split())
    text = text or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _received(request: aiohttp.web.Request) -> bytes | None:
    """The body when it is in whole already (the API server sends a review at once, and the body of a few
    KB comes with its headers), read without a wait and so without a timer; None when some is still to
    come. Refused past MAX_BODY_BYTES as `_read_body` refuses it."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise InvalidReview(f"the body is larger than {MAX_BODY_BYTES} bytes")
    content = request.content
    if not content.is_eof() or content.total_bytes > MAX_BODY_BYTES:
        return None
    return content.read_nowait()  # raises the payload's error, as reading it in chunks would


async def _read_body(request: aiohttp.web.Request) -> bytes:
    """The body, refused past MAX_BODY_BYTES before more is read (aiohttp's own limit is 1 MiB)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidReview(f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
