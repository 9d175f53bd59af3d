"""The facts API: what distroguard knows of public images, for other policy engines.

    POST /v1/gatekeeper          Gatekeeper's external data provider (`model.provider`): keys are image
                                 references, each item's value the image's facts document
    GET  /v1/facts?image=REF     one image's facts document (Kyverno's `context.apiCall.service`);
         [&platform=os/arch]     linux/amd64 unless given

The facts document is `inspect --output json`'s, plus `lifecycle` (`model.factsdoc`). Lookups go through
the anonymous resolver that admission shares (its cache, its single-flight, the ImageFacts read at start),
within the lookup budget; what misses it keeps resolving in the background, so a retry is answered warm.

Security:

- only anonymous facts: `FactsApi` is given the pool's anonymous `Resolver`, nothing that holds or finds
  credentials, so no namespace's pull secret can ever resolve or answer a request here;
- only registry references: a local image (`oci:`, `docker-archive:`) is refused, never read;
- bounded requests: `FactsLimits` (distinct keys, body bytes, the time to send the body), and cold lookups
  share one budget of their own (`resolver.fairness`, under a name no namespace can have);
- TLS: served by the webhook's server (its certificate), or by `FactsServer` on a port of its own when
  client certificates are required (`--facts-port`, `--facts-client-ca`).

Errors of `GET /v1/facts` are JSON, `{"image", "reason", "error"}`, with the HTTP status of `STATUS`
(400 bad request or reference, 404 unknown image or platform, 403 needs credentials or a refused address,
413 too big, 429 too many cold lookups, 502 registry trouble, 504 the budget ran out). Gatekeeper's
endpoint answers a request it cannot read with `systemError` (and 400, 405 or 413), and each key's failure
as its item's `error`, `reason: message`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp.web
import orjson

from distroguard.errors import (
    AuthenticationError,
    DeadlineExceeded,
    DistroguardError,
    InvalidFactsRequest,
    InvalidReference,
    LookupLimited,
    NotFoundError,
    PlatformNotFound,
    RegistryAddressRefused,
    ScanLimitExceeded,
    UnsupportedMediaType,
    reason_of,
)
from distroguard.model import ImageFacts, ImageRef, Platform
from distroguard.model.facts import ImagePlatforms
from distroguard.model.factsdoc import served_document
from distroguard.model.lifecycle import LifecycleLookup
from distroguard.model.platform import DEFAULT_PLATFORM
from distroguard.model.provider import (
    error_item,
    parse_provider_request,
    provider_response,
    value_item,
)
from distroguard.model.reference import is_local_image
from distroguard.operator.clock import Clock, system_clock
from distroguard.resolver.fairness import ColdLookups
from distroguard.resolver.resolver import Resolver
from distroguard.resolver.routing import RoutedResolver

logger = logging.getLogger(__name__)

GATEKEEPER_PATH = "/v1/gatekeeper"
FACTS_PATH = "/v1/facts"
PATHS = (GATEKEEPER_PATH, FACTS_PATH)
GATE_NAME = "<facts-api>"
"""The facts API's share of cold lookups (`ColdLookups`): not a namespace's name (those are DNS labels), so
no namespace shares it."""

STATUS: dict[type[DistroguardError], int] = {
    InvalidFactsRequest: 400,
    InvalidReference: 400,
    NotFoundError: 404,
    PlatformNotFound: 404,
    AuthenticationError: 403,
    RegistryAddressRefused: 403,
    ScanLimitExceeded: 413,
    UnsupportedMediaType: 422,
    LookupLimited: 429,
    DeadlineExceeded: 504,
}
"""The HTTP status of an error of `GET /v1/facts`, by its class or nearest base; any other error of ours is
registry trouble (502), anything else a failure of ours (500)."""


@dataclass(frozen=True, slots=True)
class FactsLimits:
    max_keys: int = 100
    """Distinct keys one Gatekeeper request may ask for (Gatekeeper batches a review's images in one)."""
    max_body_bytes: int = 256 * 1024
    """A Gatekeeper request's body: 100 keys of 2 KiB each fit with room to spare."""
    read_timeout: float = 30.0
    """Seconds a client may take to send its body (a stalled one would hold its handler for ever)."""

    def __post_init__(self) -> None:
        if self.max_keys < 1 or self.max_body_bytes < 1024 or self.read_timeout <= 0:
            raise ValueError("facts API limits: at least 1 key and 1 KiB of body, and a positive timeout")


class FactsObserver(Protocol):
    def observe_facts(self, endpoint: str, outcome: str) -> None:
        """One answered facts API request: `endpoint` gatekeeper or facts; `outcome` ok, or the reason
        of what failed (the request's, or for Gatekeeper `partial` when some keys failed)."""


class _NoObserver:
    def observe_facts(self, endpoint: str, outcome: str) -> None:
        return None


class _Refused(Exception):
    """A request refused before any lookup: its HTTP status and message."""

    def __init__(self, status: int, message: str, reason: str = InvalidFactsRequest.reason) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class FactsApi:
    """The facts API's handlers; `routes()` mounts them on an aiohttp application."""

    def __init__(
        self,
        public: Resolver,
        catalog: Callable[[], LifecycleLookup],
        *,
        budget: float,
        limits: FactsLimits | None = None,
        cold: ColdLookups | None = None,
        observer: FactsObserver | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """`public`: the anonymous resolver (the only one this API ever asks); `catalog`: the EOL data in
        use, read once per request; `budget`: seconds a request waits for facts; `cold`: the cold lookup
        budgets, of which this API takes one share (None: unlimited)."""
        self._resolver = RoutedResolver(public, gate=None if cold is None else cold.gate(GATE_NAME))
        self._catalog = catalog
        self.budget = budget
        self.limits = limits or FactsLimits()
        self._observer: FactsObserver = observer or _NoObserver()
        self._clock = clock

    def routes(self) -> list[aiohttp.web.RouteDef]:
        """The API's routes: each path answers its method, and any other with 405 (not the catch-all
        admission path of the server it shares)."""
        return [
            aiohttp.web.post(GATEKEEPER_PATH, self.gatekeeper),
            aiohttp.web.get(FACTS_PATH, self.facts, allow_head=False),
            aiohttp.web.route("*", GATEKEEPER_PATH, _not_allowed("POST")),
            aiohttp.web.route("*", FACTS_PATH, _not_allowed("GET")),
        ]

    def app(self) -> aiohttp.web.Application:
        """An application serving the API alone (`FactsServer`)."""
        app = aiohttp.web.Application()
        app.add_routes(self.routes())
        return app

    # ------------------------------------------------------------------ Gatekeeper

    async def gatekeeper(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        try:
            keys = parse_provider_request(await self._read_json(request), max_keys=self.limits.max_keys)
        except _Refused as exc:
            self._observe("gatekeeper", exc.reason)
            return _json(provider_response(system_error=exc.message), exc.status)
        except InvalidFactsRequest as exc:
            self._observe("gatekeeper", exc.reason)
            return _json(provider_response(system_error=str(exc)), 400)
        try:
            outcomes = await self._lookup(keys)
        except Exception as exc:  # ours: the whole request fails, said in Gatekeeper's terms
            logger.exception("answering a Gatekeeper request failed")
            self._observe("gatekeeper", "error")
            return _json(provider_response(system_error=f"{type(exc).__name__}: {exc}"), 500)
        catalog, today = self._catalog(), self._clock().date()
        items = []
        for key in keys:
            outcome = outcomes[key]
            if isinstance(outcome, ImageFacts):
                items.append(value_item(key, served_document(outcome, catalog, today)))
            else:
                items.append(error_item(key, reason_of(outcome), str(outcome) or type(outcome).__name__))
        failed = sum(1 for key in keys if not isinstance(outcomes[key], ImageFacts))
        self._observe("gatekeeper", "ok" if not failed else "partial")
        return _json(provider_response(items), 200)

    # ------------------------------------------------------------------ GET /v1/facts

    async def facts(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        image = ""
        try:
            image, platform = _facts_query(request.query)
            outcome = (await self._lookup([image], platform))[image]
        except _Refused as exc:
            self._observe("facts", exc.reason)
            return _json({"image": image, "reason": exc.reason, "error": exc.message}, exc.status)
        except Exception as exc:
            logger.exception("answering a facts request for %r failed", image)
            outcome = exc
        if isinstance(outcome, ImageFacts):
            self._observe("facts", "ok")
            return _json(served_document(outcome, self._catalog(), self._clock().date()), 200)
        reason = reason_of(outcome)
        self._observe("facts", reason)
        body = {"image": image, "reason": reason, "error": str(outcome) or type(outcome).__name__}
        return _json(body, status_of(outcome))

    # ------------------------------------------------------------------ shared

    async def _lookup(
        self, images: list[str], platform: Platform = DEFAULT_PLATFORM
    ) -> dict[str, ImageFacts | BaseException]:
        """Each image's facts on `platform`, or why there are none; every lookup within the budget, local
        images refused unread."""
        outcomes: dict[str, ImageFacts | BaseException] = {}
        remote = []
        for image in images:
            if is_local_image(image):
                outcomes[image] = InvalidReference(image, "only registry references are served")
            else:
                remote.append(image)
        if remote:
            found = await self._resolver.resolve_many_platforms(
                remote, platforms=[platform], budget=self.budget
            )
            for image in remote:
                outcomes[image] = _one_platform(found[image], platform)
        return outcomes

    async def _read_json(self, request: aiohttp.web.Request) -> Any:
        limit = self.limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _Refused(413, f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.read_timeout):
                async for chunk in request.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(413, f"the body is larger than {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise _Refused(400, f"the body did not arrive within {self.limits.read_timeout:g} s") from None
        except aiohttp.web.RequestPayloadError as exc:
            raise _Refused(400, f"the body could not be read: {exc.__cause__ or exc}") from None
        body = b"".join(chunks)
        if not body:
            raise _Refused(400, "the body is empty")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            try:
                return json.loads(body)
            except (ValueError, RecursionError):
                raise _Refused(400, "the body is not valid JSON") from None

    def _observe(self, endpoint: str, outcome: str) -> None:
        self._observer.observe_facts(endpoint, outcome)


def status_of(error: BaseException) -> int:
    """The HTTP status `GET /v1/facts` answers `error` with (`STATUS`)."""
    if not isinstance(error, DistroguardError):
        return 500
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 502


def _facts_query(query: Mapping[str, str]) -> tuple[str, Platform]:
    """The image (exactly one, a registry reference) and platform a `GET /v1/facts` asks for."""
    unknown = sorted(set(query) - {"image", "platform"})
    if unknown:
        raise _Refused(400, f"unknown query parameter {unknown[0]!r} (image, platform)")
    images = query.getall("image", []) if hasattr(query, "getall") else [query.get("image", "")]
    if len(images) != 1 or not images[0]:
        raise _Refused(400, "give one image: /v1/facts?image=REFERENCE")
    image = images[0]
    if is_local_image(image):
        raise _Refused(400, "only registry references are served", InvalidReference.reason)
    try:
        ImageRef.parse(image)
    except InvalidReference as exc:
        raise _Refused(400, str(exc), exc.reason) from None
    text = query.get("platform")
    if text is None:
        return image, DEFAULT_PLATFORM
    try:
        return image, Platform.parse(text)
    except ValueError as exc:
        raise _Refused(400, f"platform {text!r}: {exc}") from None


def _one_platform(outcome: ImagePlatforms | BaseException, platform: Platform) -> ImageFacts | BaseException:
    if not isinstance(outcome, ImagePlatforms):
        return outcome
    for facts in outcome.facts:
        if platform.matches(Platform.parse(facts.platform)):
            return facts
    if outcome.single and outcome.facts:
        return outcome.facts[0]  # a single-platform image: judged on its one platform, as admission does
    return PlatformNotFound(str(platform), list(outcome.offered))


def _not_allowed(method: str) -> Callable[[aiohttp.web.Request], Any]:
    async def refuse(request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = {"reason": InvalidFactsRequest.reason, "error": f"{request.path} answers {method} only"}
        return _json(body, 405, headers={"Allow": method})

    return refuse


def _json(document: Any, status: int, headers: Mapping[str, str] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        body=orjson.dumps(document), status=status, content_type="application/json", headers=headers
    )
