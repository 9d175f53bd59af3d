"""`distroguard eol update`: fetch every product of the catalog from the endoflife.date API v1.

All or nothing: the new snapshot is built only when every product arrived and validated, then
written atomically by the caller; any failure raises `CatalogUpdateError` and the catalog in use
stays as it was. The whole refresh runs under one deadline. A 429 is retried after its Retry-After
when that fits the deadline and `max_retry_wait`; 5xx and connection failures are retried with a
short backoff.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus

import aiohttp
from pydantic import ValidationError

from distroguard.eol.api import ApiProductResponse, product_from_api
from distroguard.eol.fileformat import problems
from distroguard.errors import CatalogUpdateError
from distroguard.model.lifecycle import CatalogSnapshot, ProductLifecycle
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
    proxies: ProxyEnvironment = field(default_factory=ProxyEnvironment)
    """The forward proxy for `base_url` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, read by the entry points),
    chosen once for the API's URL; redirects follow the same route. Default: direct."""

    def proxy(self) -> Proxy | None:
        return self.proxies.proxy_for_url(self.base_url)

    def url(self, product: str) -> str:
        base = self.base_url.rstrip("/")
        path = API_PATH.format(product=product)
        return base + path.removeprefix("/api/v1") if base.endswith("/api/v1") else base + path


async def fetch_snapshot(products: Sequence[str], settings: RefreshSettings, today: date) -> CatalogSnapshot:
    """Fetch `products` and build a snapshot dated `today`; `CatalogUpdateError` on any failure."""
    if not products:
        raise CatalogUpdateError("no products to refresh")
    limit = asyncio.Semaphore(settings.concurrency)
    started = time.monotonic()
    # One deadline for everything (asyncio.timeout below), not one per request.
    timeout = aiohttp.ClientTimeout(total=None)

    async def one(session: aiohttp.ClientSession, product: str) -> ProductLifecycle:
        async with limit:
            return await _fetch_product(session, product, settings, started)

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
            tasks = [group.create_task(one(session, p)) for p in products]
    except TimeoutError:
        raise late from None
    except ExceptionGroup as failed:
        first = next((e for e in failed.exceptions if isinstance(e, CatalogUpdateError)), None)
        if first is not None:
            raise first from None
        if failed.subgroup(TimeoutError) is not None:
            raise late from None
        raise
    fetched = [task.result() for task in tasks]
    return CatalogSnapshot(
        snapshot=today,
        source=f"endoflife.date API v1 at {settings.base_url}",
        notice=NOTICE,
        products=tuple(fetched),
    )


async def _fetch_product(
    session: aiohttp.ClientSession, product: str, settings: RefreshSettings, started: float
) -> ProductLifecycle:
    url = settings.url(product)
    delay = settings.backoff
    for attempt in range(1, settings.attempts + 1):
        last = attempt == settings.attempts
        try:
            async with session.get(url, headers={"Accept": "application/json"}) as response:
                status = response.status
                body = await response.read()
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientError as exc:
            if last:
                raise CatalogUpdateError(_unreachable(url, exc, settings.proxy())) from None
            await asyncio.sleep(delay)
            delay *= 2
            continue
        if status == 200:
            return _parse(product, url, body)
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
