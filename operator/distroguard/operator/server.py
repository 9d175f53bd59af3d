"""The webhook server: kopf's aiohttp server (TLS, certificate files re-read when they change) with
distroguard's own request edge in front of kopf's dispatch.

What the edge adds, each answered with the request's uid whenever it could be read:

- a body limit (`MAX_BODY_BYTES`, above aiohttp's default 1 MiB: a Pod and its old version can be more);
- decoding with `decode_review` (a malformed review is refused with code 400, not an HTTP error page);
- a known path for the request's resource: an unknown path, or a resource sent to another resource's
  path, is refused, never allowed by an empty set of handlers;
- recovery: an exception escaping kopf's dispatch is logged with its stack trace and answered as our
  error (code 500).

The decoded request reaches the handler through `take_request()`, so kopf's kwargs need not be turned
back into one; a request that no handler took (kopf found none to run) is refused, not allowed.

kopf's dispatch gets the review with `object` and `oldObject` cut down to what identifies them (`_for_kopf`):
our handlers read the whole request from `take_request()` and filter on nothing but the resource, while kopf's
generic path copies the whole object deeply on every request (a JSON patch, which a validating webhook never
has, bodies, a diff): most of the cost of a warm admission, for nothing.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import kopf

from distroguard.admission import AdmissionAnswer, AdmissionRequest, decode_review, respond
from distroguard.admission.review import MAX_BODY_BYTES, respond_invalid
from distroguard.errors import InvalidReview
from distroguard.operator.webhooks import BY_ID

logger = logging.getLogger(__name__)

ClientConfigHook = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class _Pending:
    request: AdmissionRequest
    taken: bool = False
    """Whether a handler took the request: kopf answers "allowed" when no handler runs at all."""


_CURRENT: contextvars.ContextVar[_Pending] = contextvars.ContextVar("distroguard_admission_request")


def take_request() -> AdmissionRequest:
    """The request being answered (set by the server around kopf's dispatch), noted as taken by a
    handler; LookupError outside."""
    pending = _CURRENT.get()
    pending.taken = True
    return pending.request


class AdmissionServer(kopf.WebhookServer):
    """`kopf.WebhookServer` with distroguard's request edge; `on_client_config` is awaited with each
    client configuration the server yields (once listening, and after each certificate renewal)."""

    def __init__(self, *, on_client_config: ClientConfigHook | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_client_config = on_client_config

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for client_config in super().__call__(fn):
            logger.info("serving admission webhooks at %s", client_config.get("url"))
            if self.on_client_config is not None:
                await self.on_client_config(dict(client_config))
            yield client_config

    @staticmethod
    async def _serve(fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response(await _answer(fn, request))


async def _answer(fn: Any, request: aiohttp.web.Request) -> Any:
    path = request.match_info.get("id", "")
    try:
        document = json.loads(await _read_body(request))
        decoded = decode_review(document)
    except InvalidReview as exc:
        return respond_invalid(exc)
    except (ValueError, RecursionError):
        return respond_invalid(InvalidReview("the body is not valid JSON"))
    route = BY_ID.get(path)
    if route is None or not route.accepts(decoded.kind.group, decoded.resource, decoded.sub_resource):
        what = decoded.resource + (f"/{decoded.sub_resource}" if decoded.sub_resource else "")
        message = f"distroguard does not check {what} at the path /{path}"
        return respond(decoded.uid, AdmissionAnswer.deny(message, code=400))
    pending = _Pending(decoded)
    token = _CURRENT.set(pending)
    try:
        sslpeer = request.transport.get_extra_info("peercert") if request.transport else None
        response = await fn(_for_kopf(document), webhook=path, headers=dict(request.headers), sslpeer=sslpeer)
        if not pending.taken:  # kopf matched no handler: never let that pass as "allowed"
            logger.error("no handler answered admission request %s on /%s", decoded.uid, path)
            return respond(decoded.uid, AdmissionAnswer.error(f"no distroguard handler answered /{path}"))
        return response
    except Exception as exc:  # ours, or kopf finding the review unusable (e.g. without userInfo)
        logger.exception("answering admission request %s failed", decoded.uid)
        return respond(decoded.uid, AdmissionAnswer.error(f"{type(exc).__name__}: {exc}"))
    finally:
        _CURRENT.reset(token)


_IDENTITY = ("name", "generateName", "namespace", "uid")


def _for_kopf(document: Mapping[str, Any]) -> dict[str, Any]:
    """The review as kopf's dispatch needs it: objects reduced to apiVersion, kind and identifying metadata
    (kopf logs and memorizes by them). Only called on a document `decode_review` accepted."""
    request = dict(document["request"])
    for key in ("object", "oldObject"):
        body = request.get(key)
        if isinstance(body, Mapping):
            metadata = body.get("metadata")
            identity = (
                {k: metadata[k] for k in _IDENTITY if k in metadata} if isinstance(metadata, Mapping) else {}
            )
            request[key] = {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "metadata": identity,
            }
    return {**document, "request": request}


async def _read_body(request: aiohttp.web.Request) -> bytes:
    """The body, refused past MAX_BODY_BYTES before more is read (aiohttp's own limit is 1 MiB)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise InvalidReview(f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidReview(f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
