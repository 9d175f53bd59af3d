"""`distroguard eol update` and the in-cluster refresh: fetch every product of the catalog from the
endoflife.date API v1.

All or nothing: the new snapshot is built only when every product arrived and validated, then
written atomically by the caller; any failure raises `CatalogUpdateError` and the catalog in use
stays as it was. The whole refresh runs under one deadline. A 429 is retried after its Retry-After
when that fits the deadline and `max_retry_wait`; 5xx and connection failures are retried with a
short backoff. A body larger than `max_body` fails the refresh (a product is a few KB).

Conditional requests (`fetch_products`): a product's stored validators are sent as If-None-Match
and If-Modified-Since; a 304 answers "unchanged since", and the caller keeps the data it has
(`eol.update.merge`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus

import aiohttp
from pydantic import ValidationError

from distroguard.eol.api import ApiProductResponse, product_from_api
from distroguard.eol.fileformat import problems
from distroguard.errors import CatalogUpdateError
from distroguard.model.lifecycle import CatalogSnapshot, ProductLifecycle, ProductValidators
from distroguard.proxies import Proxy, ProxyEnvironment

DEFAULT_BASE_URL = "https://endoflife.date"
API_PATH = "/api/v1/products/{product}"
NOTICE = "Release-cycle data from endoflife.date, MIT licensed (c) endoflife.date contributors"


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    base_url: str = DEFAULT_BASE_URL
    """Site or API root: `https://endoflife.date` or `.../api/v1`; products are read under it."""
    deadline: float = 60.0
    """Seconds for the whole refresh, every product and retry included."""
    concurrency: int = 4
    """Products fetched at once (endoflife.date rate-limits eager clients)."""
    attempts: int = 3
    """Tries per product for 429, 5xx and connection failures."""
    backoff: float = 0.5
    """Seconds before the first retry of a 5xx or connection failure; doubles each time."""
    max_retry_wait: float = 10.0
    """Longest Retry-After honoured; a longer one fails the refresh at once, naming the wait."""
    max_body: int = 4 * 1024 * 1024
    """Bytes one product's document may have (the largest today is ~60 KB); more fails the refresh."""
    proxies: ProxyEnvironment = field(default_factory=ProxyEnvironment)
    """The forward proxy for `base_url` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, read by the entry points),
    chosen once for the API's URL; redirects follow the same route. Default: direct."""

    def proxy(self) -> Proxy | None:
        return self.proxies.proxy_for_url(self.base_url)

    def url(self, product: str) -> str:
        base = self.base_url.rstrip("/")
        path = API_PATH.format(product=product)
        return base + path.removeprefix("/api/v1") if base.endswith("/api/v1") else base + path


@dataclass(frozen=True, slots=True)
class Fetched:
    """One product's answer: its data (None: 304, unchanged since the validators sent) and the
    validators to send next time."""

    lifecycle: ProductLifecycle | None
    validators: ProductValidators


def source_of(settings: RefreshSettings) -> str:
    return f"endoflife.date API v1 at {settings.base_url}"


async def fetch_snapshot(products: Sequence[str], settings: RefreshSettings, today: date) -> CatalogSnapshot:
    """Fetch `products` and build a snapshot dated `today`; `CatalogUpdateError` on any failure."""
    fetched = await fetch_products(products, settings, {})
    return CatalogSnapshot(
        snapshot=today,
        source=source_of(settings),
        notice=NOTICE,
        products=tuple(_full(name, fetched[name]) for name in products),
    )


def _full(name: str, fetched: Fetched) -> ProductLifecycle:
    if fetched.lifecycle is None:
        raise CatalogUpdateError(f"endoflife.date answered 304 Not Modified for {name} unasked")
    return fetched.lifecycle


async def fetch_products(
    products: Sequence[str], settings: RefreshSettings, validators: Mapping[str, ProductValidators]
) -> dict[str, Fetched]:
    """Every product's answer, conditional on its `validators` when given; `CatalogUpdateError` when
    any product fails (nothing is returned then: all or nothing)."""
    if not products:
        raise CatalogUpdateError("no products to refresh")
    limit = asyncio.Semaphore(settings.concurrency)
    started = time.monotonic()
    # One deadline for everything (asyncio.timeout below), not one per request.
    timeout = aiohttp.ClientTimeout(total=None)

    async def one(session: aiohttp.ClientSession, product: str) -> Fetched:
        async with limit:
            return await _fetch_product(session, product, settings, started, validators.get(product))

    late = CatalogUpdateError(
        f"the refresh from {settings.base_url} did not finish within its {settings.deadline:g} s deadline"
    )
    try:
        async with (
            asyncio.timeout(settings.deadline),
            _session(settings, timeout) as session,
            # A TaskGroup cancels the other fetches as soon as one fails: it is all or nothing.
            asyncio.TaskGroup() as group,
        ):
            tasks = {p: group.create_task(one(session, p)) for p in products}
    except TimeoutError:
        raise late from None
    except ExceptionGroup as failed:
        first = next((e for e in failed.exceptions if isinstance(e, CatalogUpdateError)), None)
        if first is not None:
            raise first from None
        if failed.subgroup(TimeoutError) is not None:
            raise late from None
        raise
    return {product: task.result() for product, task in tasks.items()}


def _conditions(known: ProductValidators | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if known is not None and known.etag:
        headers["If-None-Match"] = known.etag
    if known is not None and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    return headers


async def _read_bounded(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The body, or `CatalogUpdateError` as soon as it is longer than `limit` (never read whole)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise CatalogUpdateError(f"{url} sent {declared} bytes, more than the {limit} allowed")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise CatalogUpdateError(f"{url} sent more than the {limit} bytes allowed")
    return bytes(body)


async def _fetch_product(
    session: aiohttp.ClientSession,
    product: str,
    settings: RefreshSettings,
    started: float,
    known: ProductValidators | None,
) -> Fetched:
    url = settings.url(product)
    delay = settings.backoff
    headers = _conditions(known)
    for attempt in range(1, settings.attempts + 1):
        last = attempt == settings.attempts
        try:
            async with session.get(url, headers=headers) as response:
                status = response.status
                body = await _read_bounded(response, settings.max_body, url) if status == 200 else b""
                retry_after = response.headers.get("Retry-After")
                validators = ProductValidators(
                    etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified")
                )
        except aiohttp.ClientError as exc:
            if last:
                raise CatalogUpdateError(_unreachable(url, exc, settings.proxy())) from None
            await asyncio.sleep(delay)
            delay *= 2
            continue
        if status == 200:
            return Fetched(_parse(product, url, body), validators)
        if status == 304 and known is not None:
            # A 304 may omit the validators; the ones sent still describe the data kept.
            return Fetched(
                None,
                ProductValidators(
                    etag=validators.etag or known.etag,
                    last_modified=validators.last_modified or known.last_modified,
                ),
            )
        if status == 404:
            raise CatalogUpdateError(
                f"endoflife.date has no product {product!r}: {url} answered 404 Not Found"
            )
        if status == 429:
            wait = _retry_after(retry_after)
            remaining = settings.deadline - (time.monotonic() - started)
            if last or wait is None or wait > settings.max_retry_wait or wait >= remaining:
                after = f" (Retry-After: {retry_after})" if retry_after else ""
                raise CatalogUpdateError(
                    f"{url} answered 429 Too Many Requests{after}: endoflife.date is rate-limiting; try later"
                )
            await asyncio.sleep(wait)
            continue
        if status >= 500 and not last:
            await asyncio.sleep(delay)
            delay *= 2
            continue
        raise CatalogUpdateError(f"{url} answered HTTP {status} (after {attempt} attempt(s))")
    raise AssertionError("unreachable: the last attempt returns or raises")


def _session(settings: RefreshSettings, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """The session of one refresh: through `settings`' proxy, if any (aiohttp's own `trust_env` stays off)."""
    proxy = settings.proxy()
    return aiohttp.ClientSession(
        timeout=timeout, raise_for_status=False, trust_env=False, proxy=proxy.url if proxy else None
    )


def _unreachable(url: str, exc: aiohttp.ClientError, proxy: Proxy | None) -> str:
    """Why `url` could not be reached; through a proxy, in words that name it without its password (aiohttp's
    own text may carry the proxy's URL)."""
    if proxy is None:
        return f"cannot reach {url}: {exc}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        try:
            status = f"HTTP {exc.status} {HTTPStatus(exc.status).phrase}"
        except ValueError:
            status = f"HTTP {exc.status}"
        return f"cannot reach {url}: the proxy {proxy} refused a tunnel: {status}"
    cause = getattr(exc, "os_error", None)
    reason = getattr(cause, "strerror", None) or type(exc).__name__
    at_proxy = isinstance(exc, aiohttp.ClientConnectorError) and (exc.host, exc.port) == (
        proxy.host,
        proxy.port,
    )
    where = f"the proxy {proxy} cannot be reached" if at_proxy else f"through the proxy {proxy}"
    return f"cannot reach {url}: {where} ({reason})"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None for a missing or HTTP-date value (not worth parsing
    here)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _parse(product: str, url: str, body: bytes) -> ProductLifecycle:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogUpdateError(f"{url} returned malformed JSON: {exc}") from None
    try:
        response = ApiProductResponse.model_validate(document)
    except ValidationError as exc:
        raise CatalogUpdateError(f"{url} returned an unexpected document ({problems(exc)})") from None
    if not response.result.releases:
        raise CatalogUpdateError(f"{url} lists no releases for {product}")
    # The catalog keys products by the name distroguard asked for, even if the API redirected to a
    # new one.
    return product_from_api(response).model_copy(update={"name": product})
