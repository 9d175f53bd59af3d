"""The HTTP edge: one aiohttp session, redirects followed by hand, retries with backoff, deadlines.

Knows nothing of manifests or authentication schemes: it sends what it is given, keeps
`Authorization` on the origin it was meant for, and turns "not now" answers (429, 5xx, dropped
connections) into waits within the caller's deadline. Everything above it speaks in
`RegistryError`s, never in aiohttp's.

Requests go through the forward proxy `RegistrySettings.proxies` chooses per URL (each redirect hop
chosen again). An https target is reached through a CONNECT tunnel, so `Authorization` travels inside
TLS and the proxy sees only `host:port`; a plain-HTTP request would show the proxy its headers, so one
carrying credentials (an `Authorization`, a token form) is refused rather than sent through a proxy.
The proxy's own `user:password` becomes `Proxy-Authorization` for the proxy alone; messages name a
proxy with it blanked out (`proxies.Proxy.__str__`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from http import HTTPStatus

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from distroguard.errors import (
    DeadlineExceeded,
    InsecureRegistryError,
    RegistryAddressRefused,
    RegistryError,
    RegistryUnavailable,
    RegistryUnreachable,
    ScanLimitExceeded,
)
from distroguard.proxies import Proxy
from distroguard.registry.addresses import AccessPolicy, AddressNotAllowed, AddressRefused, GuardedResolver
from distroguard.registry.foreign import debug, unexpected
from distroguard.registry.hosts import allows_plain_http, api_host
from distroguard.registry.meter import ByteMeter, RegistryStats
from distroguard.registry.retry import RETRY_STATUSES, backoff_delay, parse_retry_after
from distroguard.registry.settings import RegistrySettings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Failures worth another attempt: the connection broke or timed out, not "the certificate is
#: wrong".
RETRYABLE_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
_TLS_ERRORS = (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError)


#: The innermost deadline scope of this task: (its deadline, what it is doing).
_under_way: ContextVar[tuple[float, Callable[[], str]] | None] = ContextVar("_under_way", default=None)


@asynccontextmanager
async def deadline_scope(deadline: float | None, describe: Callable[[], str]) -> AsyncIterator[None]:
    """Run the block until the absolute loop time `deadline`, then raise DeadlineExceeded.

    Scopes nest (a manifest request around its token fetch around one HTTP exchange): the outermost
    one whose deadline comes first keeps the time, and the error describes the innermost one, i.e.
    what was under way when time ran out.
    """
    if deadline is None:
        yield
        return
    outer = _under_way.get()
    token = _under_way.set((deadline, describe))
    if outer is not None and outer[0] <= deadline:
        try:
            yield
        except asyncio.CancelledError:
            raise  # left set: the enclosing scope reports what was under way
        except BaseException:
            _under_way.reset(token)
            raise
        _under_way.reset(token)
        return
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            yield
    except TimeoutError as exc:
        if scope.expired() and not isinstance(exc, DeadlineExceeded):
            doing = _under_way.get()
            raise DeadlineExceeded((doing[1] if doing is not None else describe)()) from None
        raise
    finally:
        _under_way.reset(token)


def describe_error(exc: BaseException) -> str:
    """What failed, in our words: the exception's class and, for an operating system error, its errno's
    description. aiohttp's own messages are not repeated: they carry what the server sent (a malformed
    header's value, a redirect target's host). The whole text goes to the debug log."""
    debug("connection error", exc)
    errno = getattr(exc, "errno", None)
    if not isinstance(errno, int):
        errno = getattr(getattr(exc, "os_error", None), "errno", None)
    if isinstance(errno, int) and errno > 0:
        return f"{type(exc).__name__}: {os.strerror(errno)}"
    return type(exc).__name__


def describe_tls(exc: BaseException) -> str:
    """A TLS failure in our words: OpenSSL's verification message up to any name it quotes (the server's
    certificate chooses those), or its reason code, or the exception's class."""
    debug("TLS error", exc)
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
    message = getattr(cause, "verify_message", None)
    if isinstance(message, str) and message:
        return message.split("'", 1)[0].rstrip(", ")
    reason = getattr(cause, "reason", None)  # OpenSSL's reason code, e.g. WRONG_VERSION_NUMBER
    if isinstance(reason, str) and reason.replace("_", "").isalnum() and reason.isupper():
        return f"{type(exc).__name__}: {reason}"
    return type(exc).__name__


def hostport(url: URL) -> str:
    host = url.host or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{url.explicit_port}" if url.explicit_port is not None else host


class ProxyFailure(Exception):
    """The proxy, not the registry, failed a request; `retryable` when the next attempt may pass (the proxy
    was unreachable, or answered 5xx because it could not reach the registry)."""

    def __init__(self, proxy: Proxy, problem: str, *, retryable: bool) -> None:
        self.proxy = proxy
        self.retryable = retryable
        super().__init__(f"the proxy {proxy} {problem}")


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def proxy_failure(proxy: Proxy, target: str, exc: BaseException) -> ProxyFailure | None:
    """`exc`, raised on a request through `proxy` to `target` (`host:port`), as the proxy's failure, or None
    when it is not the proxy's (a TLS error of the registry inside the tunnel, a dropped answer)."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # CONNECT answered with something else than 200
        hint = " (give its user:password in the proxy URL)" if exc.status == 407 else ""
        problem = f"refused a tunnel to {target}: {_status_text(exc.status)}{hint}"
        return ProxyFailure(proxy, problem, retryable=exc.status >= 500)
    at_proxy = isinstance(exc, aiohttp.ClientConnectorError) and (exc.host.lower(), exc.port) == (
        proxy.host,
        proxy.port,
    )
    if at_proxy:
        if isinstance(exc, _TLS_ERRORS):
            return ProxyFailure(proxy, f"failed TLS ({describe_tls(exc)})", retryable=False)
        return ProxyFailure(proxy, f"cannot be reached ({describe_error(exc)})", retryable=True)
    return None


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


async def read_bounded(
    response: aiohttp.ClientResponse,
    limit: int,
    bound: str,
    what: str,
    meter: ByteMeter | None = None,
) -> bytes:
    """The whole body; ScanLimitExceeded (naming `bound`) as soon as it passes `limit` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ScanLimitExceeded(bound, limit, f"{what} declares {declared} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(64 * 1024)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if meter is not None:
            meter.add(len(chunk))
        if size > limit:
            raise ScanLimitExceeded(bound, limit, f"{what} is larger")
        parts.append(chunk)


class Transport:
    """One aiohttp session for every registry, opened and closed by its owner."""

    def __init__(
        self,
        settings: RegistrySettings,
        ssl_context: ssl.SSLContext | None = None,
        *,
        jitter: Callable[[], float] = random.random,
        stats: RegistryStats | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """`resolver`: the DNS resolver under the guard (aiohttp's default when None)."""
        self.settings = settings
        access = (
            AccessPolicy.parse(settings.registry_allow, settings.refused_networks)
            if settings.registry_guard
            else None
        )
        self.resolver = GuardedResolver(resolver, access)
        self.proxies = settings.proxies
        self.stats = stats if stats is not None else RegistryStats()
        self._ssl = ssl_context
        self._jitter = jitter
        self._session: aiohttp.ClientSession | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )
        # Blobs can be large: no total, but no silence longer than read_timeout either.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
        )

    async def open(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            ssl=self._ssl if self._ssl is not None else True,
            resolver=self.resolver,
            keepalive_timeout=self.settings.keepalive,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                "User-Agent": self.settings.user_agent,
                # Digests cover the bytes as stored: never let a proxy or server re-encode them.
                "Accept-Encoding": "identity",
            },
            auto_decompress=False,
            trust_env=False,  # proxies are chosen by `settings.proxies`, never by aiohttp
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the registry client is not open: use `async with RegistryClient(...)`")
        return self._session

    def slot(self, registry: str) -> asyncio.Semaphore:
        """The semaphore bounding concurrent requests to `registry`."""
        semaphore = self._slots.get(registry)
        if semaphore is None:
            semaphore = self._slots[registry] = asyncio.Semaphore(self.settings.concurrency)
        return semaphore

    def plain_http(self, hostport_text: str) -> bool:
        """Whether plain HTTP may be spoken to `host[:port]` (see RegistrySettings)."""
        return allows_plain_http(
            hostport_text,
            self.settings.insecure_registries,
            loopback=self.settings.plain_http_loopback,
        )

    def proxy_for(self, url: URL) -> Proxy | None:
        """The proxy a request to `url` goes through, or None (direct)."""
        return self.proxies.proxy_for(url.scheme, url.host or "", url.port)

    def _is_registry(self, registry: str, host: str | None, port: int | None) -> bool:
        """Whether `host:port` is `registry`'s own API address (not a redirect's or a token realm's)."""
        own = self.base_url(registry)
        return (host or "").lower() == (own.host or "").lower() and port in (own.port, None)

    def base_url(self, registry: str) -> URL:
        """`scheme://host[:port]` of `registry`'s API (Docker Hub mapped to its API host)."""
        host = api_host(registry)
        scheme = "http" if self.plain_http(host) else "https"
        return URL(f"{scheme}://{host}")

    async def send(
        self,
        method: str,
        url: URL,
        *,
        registry: str,
        what: str,
        headers: Mapping[str, str],
        deadline: float | None = None,
        stream: bool = False,
        form: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send until an answer that is not "try again later"; the caller releases the response.

        429 and 5xx answers and connection failures are retried up to `max_retries` times with
        backoff (or the server's Retry-After), never past `deadline`. Redirects are followed here
        (see `_follow`).
        """
        loop = asyncio.get_running_loop()
        attempts = 0
        first_hop = self.proxy_for(url)
        via = f" through the proxy {first_hop}" if first_hop is not None else ""
        last = "waiting for an answer" + via

        def describe() -> str:
            return f"registry {registry}: {what}: the deadline passed ({last})"

        other_host = False  # whether a connection to a host other than the registry's failed
        async with deadline_scope(deadline, describe):
            while True:
                attempts += 1
                retry_after: float | None = None
                retry_status = False  # whether the registry answered (a status to retry) or not at all
                try:
                    response = await self._follow(
                        method,
                        url,
                        registry=registry,
                        what=what,
                        headers=headers,
                        stream=stream,
                        form=form,
                    )
                except ProxyFailure as failure:
                    if not failure.retryable:
                        raise RegistryError(registry, f"{what}: {failure}") from None
                    last = str(failure)
                except _TLS_ERRORS as exc:
                    raise RegistryError(registry, f"{what}: TLS failed ({describe_tls(exc)})") from None
                except RETRYABLE_ERRORS as exc:
                    refused = getattr(exc, "os_error", None)
                    # A connection that failed to another host (a redirect's, a token realm's) says
                    # nothing of the registry's other images: it is no failure of the whole host.
                    elsewhere = isinstance(exc, aiohttp.ClientConnectorError) and not self._is_registry(
                        registry, exc.host, exc.port
                    )
                    if isinstance(refused, AddressNotAllowed):
                        raise RegistryAddressRefused(
                            registry, str(refused), whole_host=not elsewhere
                        ) from None
                    if isinstance(refused, AddressRefused):  # the same answer next time: no retry
                        raise InsecureRegistryError(registry, f"{what}: {refused}") from None
                    last = describe_error(exc) + via
                    other_host = other_host or elsewhere
                except aiohttp.ClientError as exc:  # a malformed answer: trying again will not help
                    raise RegistryError(registry, f"{what}: {describe_error(exc)}") from None
                else:
                    if response.status not in RETRY_STATUSES:
                        return response
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    retry_status = True
                    last = f"HTTP {response.status}"
                    response.release()
                if attempts > self.settings.max_retries:
                    failed = RegistryUnavailable if retry_status or other_host else RegistryUnreachable
                    raise failed(registry, f"{what}: {last} (gave up after {attempts} attempts)")
                delay = self.retry_delay(attempts, retry_after)
                if deadline is not None and loop.time() + delay >= deadline:
                    raise DeadlineExceeded(
                        f"registry {registry}: {what}: {last}; waiting {delay:.2f} s to try again "
                        "would pass the deadline"
                    )
                await asyncio.sleep(delay)

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.max_retry_after)
        return backoff_delay(attempt, self.settings.backoff_initial, self.settings.backoff_max, self._jitter)

    async def _follow(
        self,
        method: str,
        url: URL,
        *,
        registry: str,
        what: str,
        headers: Mapping[str, str],
        stream: bool,
        form: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """One request with its redirects followed (at most `max_redirects` hops).

        `Authorization` goes only to the origin (scheme, host, port) it was meant for: registries
        send blobs to storage with presigned URLs, and a registry token must not reach a storage
        host. A redirect to plain HTTP is refused unless that host may use plain HTTP.
        """
        origin = _origin(url)
        timeout = self._stream_timeout if stream else self._timeout
        stripped = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        for _ in range(self.settings.max_redirects + 1):
            refused = self.resolver.literal_refusal(url.host or "")
            if refused:  # an address written out is connected to without a lookup: judged here
                whole = self._is_registry(registry, url.host, url.port)
                raise RegistryAddressRefused(registry, refused, whole_host=whole)
            sent = headers if _origin(url) == origin else stripped
            proxy = self.proxy_for(url)
            if proxy is not None:
                await self._screen(url, registry, what)
                credentials = form is not None or any(k.lower() == "authorization" for k in sent)
                if url.scheme == "http" and credentials:
                    raise InsecureRegistryError(
                        registry,
                        f"{what}: credentials are not sent through the proxy {proxy} over plain HTTP to "
                        f"{hostport(url)} (the proxy would read them); reach it directly (NO_PROXY) or "
                        "over HTTPS",
                    )
            try:
                with self.resolver.via(proxy.host, proxy.port) if proxy else contextlib.nullcontext():
                    response = await self.session.request(
                        method,
                        url,
                        headers=sent,
                        data=dict(form) if form is not None else None,
                        allow_redirects=False,
                        timeout=timeout,
                        proxy=proxy.url if proxy is not None else None,
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.count_request(registry, None)
                failure = proxy_failure(proxy, _target(url), exc) if proxy is not None else None
                if failure is not None:
                    raise failure from None
                raise
            self.stats.count_request(registry, response.status)
            if proxy is not None and url.scheme == "http" and response.status == 407:
                response.release()
                raise ProxyFailure(proxy, "asks for authentication (HTTP 407)", retryable=False)
            if response.status not in REDIRECT_STATUSES:
                return response
            location = response.headers.get("Location")
            status = response.status
            response.release()
            if not location:
                raise RegistryError(registry, f"{what}: HTTP {status} redirect without a Location")
            debug("redirect", location)
            try:
                target = url.join(URL(location, encoded=True))
            except ValueError:
                raise RegistryError(registry, f"{what}: unusable redirect, {unexpected(location)}") from None
            if target.scheme not in ("http", "https") or not target.host:
                raise RegistryError(registry, f"{what}: redirect to an unusable URL, {unexpected(location)}")
            if target.scheme == "http" and not self.plain_http(hostport(target)):
                raise InsecureRegistryError(
                    registry,
                    f"{what}: redirect to plain HTTP at another host refused "
                    "(allowed only for loopback hosts and insecure registries)",
                )
            if status == 303 and method != "HEAD":
                method, form = "GET", None
            url = target
        raise RegistryError(registry, f"{what}: more than {self.settings.max_redirects} redirects")

    async def _screen(self, url: URL, registry: str, what: str) -> None:
        """The address guard for a request a proxy connects: the target judged here, before the proxy."""
        try:
            await self.resolver.screen(url.host or "", url.port or 0)
        except AddressNotAllowed as exc:
            whole = self._is_registry(registry, url.host, url.port)
            raise RegistryAddressRefused(registry, str(exc), whole_host=whole) from None
        except AddressRefused as exc:
            raise InsecureRegistryError(registry, f"{what}: {exc}") from None


def _target(url: URL) -> str:
    """`host:port` as a proxy is asked to connect to it."""
    host = url.host or ""
    return f"[{host}]:{url.port}" if ":" in host else f"{host}:{url.port}"
