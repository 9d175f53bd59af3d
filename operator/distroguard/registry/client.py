"""`RegistryClient`: the registry API distroguard needs (tag → digest, manifests, blobs), async,
bounded.

    async with RegistryClient(RegistrySettings(), credentials) as client:
        digest = await client.head_digest(ref)
        media_type, body, digest = await client.get_manifest(ref, digest)
        async for chunk in client.stream_blob(ref, layer):
            ...

Every call takes an optional `deadline` (an absolute `loop.time()`, DeadlineExceeded past it) and an
optional `meter` (a ByteMeter that counts the body bytes read). Errors are `RegistryError`s naming
the registry and what failed; bytes are verified against the digests that name them
(DigestMismatch).
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from distroguard.errors import (
    AuthenticationError,
    DeadlineExceeded,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
    ScanLimitExceeded,
    SourceError,
)
from distroguard.model import ImageRef
from distroguard.registry.auth import parse_www_authenticate
from distroguard.registry.authflow import Authenticator, Schemes, pull_scope
from distroguard.registry.credentials import CredentialStore
from distroguard.registry.digest import (
    DigestVerifier,
    check_digest,
    digest_of,
    is_digest,
    verify_digest,
)
from distroguard.registry.foreign import debug, known, unexpected
from distroguard.registry.hosts import mirrored
from distroguard.registry.manifest import Descriptor
from distroguard.registry.mediatypes import MANIFEST_ACCEPT, base_type
from distroguard.registry.meter import ByteMeter, RegistryStats
from distroguard.registry.pipelining import AheadStream
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.transport import (
    RETRYABLE_ERRORS,
    Transport,
    deadline_scope,
    describe_error,
    read_bounded,
)

__all__ = ["RegistryClient", "RegistrySettings"]

#: Error bodies are read only this far, for the registry's error codes.
MAX_ERROR_BODY = 16 * 1024
DEFAULT_CHUNK_SIZE = 64 * 1024


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


#: The error codes of the OCI distribution spec (and Docker Hub's TOOMANYREQUESTS): the only words of an
#: error body a message repeats. The `message` and `detail` beside them are the registry's own text.
OCI_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)


async def _error_codes(response: aiohttp.ClientResponse) -> str:
    """The OCI error codes of a registry error body (distribution spec), or "": a code we do not know is
    "unexpected value", and the messages are never repeated (they are the registry's own text)."""
    if response.method == "HEAD":
        return ""
    try:
        body = await response.content.read(MAX_ERROR_BODY)
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError, aiohttp.ClientError, TimeoutError):
        return ""
    if not isinstance(errors, list):
        return ""
    parts = [known(e.get("code"), OCI_ERROR_CODES) for e in errors[:5] if isinstance(e, dict)]
    debug("registry error body", body)
    return "; ".join(dict.fromkeys(parts))


class RegistryClient:
    """A client for OCI distribution registries over one aiohttp session (`async with` lifetime)."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        credentials: CredentialStore | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        jitter: Callable[[], float] = random.random,
        stats: RegistryStats | None = None,
        dns: AbstractResolver | None = None,
        schemes: Schemes | None = None,
    ) -> None:
        """`dns`: the DNS resolver under the address guard (aiohttp's default when None); `schemes`: how each
        registry authenticates, shared with other clients (`authflow.Schemes`), else this client's own."""
        self.settings = settings or RegistrySettings()
        self.credentials = credentials or CredentialStore()
        self._transport = Transport(self.settings, ssl_context, jitter=jitter, stats=stats, resolver=dns)
        self._auth = Authenticator(self._transport, self.credentials, clock=time.monotonic, schemes=schemes)
        self._ahead: Counter[str] = Counter()
        """Blob streams started ahead of their readers and not yet taken over, by registry."""

    async def __aenter__(self) -> Self:
        await self._transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.close()

    @property
    def stats(self) -> RegistryStats:
        """Requests and bytes of this client (shared with others when one was passed in)."""
        return self._transport.stats

    def base_url(self, registry: str) -> URL:
        """Where `registry`'s API is reached (scheme chosen by the plain-HTTP rule)."""
        return self._transport.base_url(registry)

    def route(self, ref: ImageRef) -> ImageRef:
        """The reference requests for `ref` really go to: `ref` itself, or its registry's mirror's
        (`RegistrySettings.registry_mirrors`). Connection slots, statistics, credentials and
        tokens follow the routed registry; error messages name the reference as it was asked for.
        """
        registry, repository = mirrored(ref.registry, ref.repository, self.settings.registry_mirrors)
        if (registry, repository) == (ref.registry, ref.repository):
            return ref
        return ref.model_copy(update={"registry": registry, "repository": repository})

    # ------------------------------------------------------------------ API

    async def head_digest(
        self, ref: ImageRef, *, deadline: float | None = None, meter: ByteMeter | None = None
    ) -> str:
        """The digest `ref`'s tag points to now (the ref's own digest when it has one, without I/O).

        HEAD first; registries that omit Docker-Content-Digest get a GET, hashed here.
        """
        if ref.digest:
            return check_digest(ref.digest, f"reference {ref}")
        tag = ref.tag or "latest"
        what = f"manifest {ref.name}:{tag}"
        ref = self.route(ref)
        async with (
            self._slot(ref.registry, deadline, what),
            deadline_scope(deadline, lambda: f"registry {ref.registry}: {what}: the deadline passed"),
        ):
            response = await self._open(
                ref, "HEAD", f"manifests/{tag}", what, deadline, accept=MANIFEST_ACCEPT
            )
            response.release()
            header = response.headers.get("Docker-Content-Digest", "")
            if is_digest(header):
                return header
            _, _, digest = await self._manifest(ref, tag, what, deadline, meter)
            return digest

    async def get_manifest(
        self,
        ref: ImageRef,
        reference: str,
        *,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> tuple[str, bytes, str]:
        """(media type as served, body, digest) of the manifest or index named by a tag or digest.

        A body fetched by digest is verified against it; one fetched by tag against
        Docker-Content-Digest when the registry sends it. Bodies over `max_manifest_bytes` are
        refused.
        """
        pinned = ":" in reference
        if pinned:
            check_digest(reference, f"manifest reference of {ref.name}")
        what = f"manifest {ref.name}{'@' if pinned else ':'}{reference}"
        ref = self.route(ref)
        async with (
            self._slot(ref.registry, deadline, what),
            deadline_scope(deadline, lambda: f"registry {ref.registry}: {what}: the deadline passed"),
        ):
            return await self._manifest(ref, reference, what, deadline, meter)

    async def read_blob(
        self,
        ref: ImageRef,
        desc: Descriptor,
        *,
        max_bytes: int,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> bytes:
        """A whole blob, verified; refused up front when the descriptor says it is over
        `max_bytes`.
        """
        what = f"blob {desc.digest} of {ref.name}"
        if desc.size > max_bytes:
            raise ScanLimitExceeded("max_bytes", max_bytes, f"{what} is {desc.size} bytes")
        parts = [chunk async for chunk in self.stream_blob(ref, desc, deadline=deadline, meter=meter)]
        return b"".join(parts)

    async def stream_blob(
        self,
        ref: ImageRef,
        desc: Descriptor,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        offset: int = 0,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Yield a blob's bytes as they arrive (at most `chunk_size` at a time, never more than
        desc.size).

        The bytes are hashed on the way and DigestMismatch is raised after the last chunk when they
        are not what desc.digest names, so a consumer must treat what it built from them as
        tentative until the iteration ends. A dropped connection resumes with a Range request where
        it stopped (up to `max_resumes` times, within the deadline). With `offset`, the stream
        starts at that byte and cannot be verified (the skipped bytes are not hashed): the caller
        checks what it reads. The stream holds one of the registry's connection slots until it ends
        or is closed (aclose).
        """
        what = f"blob {desc.digest} of {ref.name}"
        check_digest(desc.digest, what)
        ref = self.route(ref)
        if not 0 <= offset <= desc.size:
            raise ValueError(f"offset {offset} outside the blob's {desc.size} bytes")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        verifier = DigestVerifier(desc.digest, what, desc.size) if offset == 0 else None
        position = offset
        resumes = 0

        def late() -> str:
            return f"registry {ref.registry}: {what}: the deadline passed at byte {position}"

        async with self._slot(ref.registry, deadline, what):
            while position < desc.size:
                response = await self._open(
                    ref, "GET", f"blobs/{desc.digest}", what, deadline, first_byte=position
                )
                complete = False
                dropped = "the body ended early"
                try:
                    skip = position - self._range_start(response, position, desc.size, ref, what)
                    while position < desc.size:
                        try:
                            async with deadline_scope(deadline, late):
                                chunk = await response.content.read(chunk_size)
                        except DeadlineExceeded:
                            raise  # a TimeoutError, but no connection fault: nothing to resume
                        except RETRYABLE_ERRORS as exc:
                            dropped = describe_error(exc)
                            break
                        if not chunk:
                            break
                        self._transport.stats.count_bytes(ref.registry, len(chunk))
                        if meter is not None:
                            meter.add(len(chunk))
                        if skip:
                            # The server ignored Range and started over: drop what we already have.
                            drop = min(skip, len(chunk))
                            chunk, skip = chunk[drop:], skip - drop
                            if not chunk:
                                continue
                        if position + len(chunk) > desc.size:
                            raise SourceError(
                                f"{what}: the registry sent more than the descriptor's {desc.size} bytes"
                            )
                        position += len(chunk)
                        if verifier is not None:
                            verifier.update(chunk)
                        yield chunk
                    else:
                        complete = True
                finally:
                    if complete:
                        response.release()
                    else:  # stopped early or dropped: this connection must not be reused
                        response.close()
                if complete:
                    break
                resumes += 1
                if resumes > self.settings.max_resumes:
                    raise RegistryUnavailable(
                        ref.registry,
                        f"{what}: the transfer broke at byte {position} of {desc.size} "
                        f"({dropped}); "
                        f"gave up after {self.settings.max_resumes} resumes",
                    )
                await self._pause(
                    ref.registry, what, resumes, deadline, f"broke at byte {position} ({dropped})"
                )
        if verifier is not None:
            verifier.verify()

    def stream_ahead(
        self,
        ref: ImageRef,
        desc: Descriptor,
        *,
        deadline: float | None = None,
        meter: ByteMeter | None = None,
    ) -> AheadStream | None:
        """`stream_blob(ref, desc)` started now, for a reader that first waits for another answer (see
        `pipelining`); None when the registry has too few connection slots left for that.

        Streams waiting for their readers hold at most half of a registry's slots (none of one slot): the
        others always serve requests whose answers are read at once, so that a reader waiting for its own
        request (an image's config) while its stream holds a slot never waits for ever, nor long behind
        other lookups' streams when many run at once.
        """
        registry = self.route(ref).registry
        if self._ahead[registry] >= self.settings.concurrency // 2:
            return None
        self._ahead[registry] += 1

        def taken() -> None:
            self._ahead[registry] -= 1
            if self._ahead[registry] <= 0:
                del self._ahead[registry]

        return AheadStream(self.stream_blob(ref, desc, deadline=deadline, meter=meter), taken)

    # ------------------------------------------------------------------ internals

    @asynccontextmanager
    async def _slot(self, registry: str, deadline: float | None, what: str) -> AsyncIterator[None]:
        semaphore = self._transport.slot(registry)

        def late() -> str:
            return (
                f"registry {registry}: {what}: the deadline passed while waiting for one of the "
                f"{self.settings.concurrency} connection slots"
            )

        async with deadline_scope(deadline, late):
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()

    async def _manifest(
        self,
        ref: ImageRef,
        reference: str,
        what: str,
        deadline: float | None,
        meter: ByteMeter | None,
    ) -> tuple[str, bytes, str]:
        attempt = 0
        while True:
            response = await self._open(
                ref, "GET", f"manifests/{reference}", what, deadline, accept=MANIFEST_ACCEPT
            )
            try:
                async with response:
                    media_type = base_type(response.headers.get("Content-Type"))
                    served_digest = response.headers.get("Docker-Content-Digest", "")
                    body = await read_bounded(
                        response,
                        self.settings.max_manifest_bytes,
                        "max_manifest_bytes",
                        what,
                        meter,
                    )
                self._transport.stats.count_bytes(ref.registry, len(body))
                break
            except RETRYABLE_ERRORS as exc:  # the body broke off: ask again, as for a 503
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise RegistryUnavailable(
                        ref.registry,
                        f"{what}: {describe_error(exc)} (gave up after {attempt} attempts)",
                    ) from None
                await self._pause(ref.registry, what, attempt, deadline, describe_error(exc))
        if ":" in reference:
            verify_digest(body, reference, what)
            return media_type, body, reference
        if is_digest(served_digest):
            verify_digest(body, served_digest, what)
            return media_type, body, served_digest
        return media_type, body, digest_of(body)

    async def _pause(
        self, registry: str, what: str, attempt: int, deadline: float | None, failure: str
    ) -> None:
        """Wait before attempt `attempt + 1`; DeadlineExceeded when that would be too late."""
        delay = self._transport.retry_delay(attempt, None)
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            raise DeadlineExceeded(f"registry {registry}: {what}: {failure}; no time left to try again")
        await asyncio.sleep(delay)

    def _range_start(
        self, response: aiohttp.ClientResponse, wanted: int, size: int, ref: ImageRef, what: str
    ) -> int:
        """Where the body of a blob response starts: `wanted` for a 206, 0 for a full 200."""
        if response.status != 206:
            return 0
        content_range = response.headers.get("Content-Range", "")
        unit, _, rest = content_range.partition(" ")
        start_text = rest.partition("-")[0]
        if unit.strip().lower() != "bytes" or not start_text.isdigit():
            debug("Content-Range", content_range)
            raise RegistryError(ref.registry, f"{what}: unusable Content-Range, {unexpected(content_range)}")
        start = int(start_text)
        if start != wanted:
            raise RegistryError(
                ref.registry, f"{what}: asked for bytes from {wanted}, got a range from {start}"
            )
        return start

    async def _open(
        self,
        ref: ImageRef,
        method: str,
        path: str,
        what: str,
        deadline: float | None,
        *,
        accept: str | None = None,
        first_byte: int = 0,
    ) -> aiohttp.ClientResponse:
        """A 2xx response for `/v2/<repository>/<path>`, authenticated as needed; errors raised."""
        registry = ref.registry
        scope = pull_scope(ref.repository)
        url = self._transport.base_url(registry).with_path(f"/v2/{ref.repository}/{path}")
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        if first_byte:
            headers["Range"] = f"bytes={first_byte}-"
        sent = await self._auth.authorization(registry, scope, deadline)
        stream = path.startswith("blobs/")
        for attempt in (1, 2):
            if sent:
                headers["Authorization"] = sent
            response = await self._transport.send(
                method,
                url,
                registry=registry,
                what=what,
                headers=headers,
                deadline=deadline,
                stream=stream,
            )
            if response.status != 401 or attempt == 2 or _origin(response.url) != _origin(url):
                break
            challenges = parse_www_authenticate(response.headers.getall("WWW-Authenticate", []))
            response.release()
            sent = await self._auth.respond(registry, scope, challenges, sent, deadline)
        if 200 <= response.status < 300:
            return response
        async with response:
            detail = await _error_codes(response)
        raise self._status_error(response.status, registry, what, detail, sent is not None)

    def _status_error(
        self, status: int, registry: str, what: str, detail: str, authed: bool
    ) -> RegistryError:
        suffix = f" ({detail})" if detail else ""
        if status == 401:
            credentials = self.credentials.get(registry)
            if not authed:
                how = "anonymous access refused"
            elif credentials is not None and credentials.username:
                how = f"the credentials of {credentials.username!r} were refused"
            else:
                how = "the credentials were refused"
            return AuthenticationError(registry, f"{what}: unauthorized, {how}{suffix}")
        if status == 403:
            return AuthenticationError(registry, f"{what}: access denied{suffix}")
        if status == 404:
            return NotFoundError(registry, f"{what}: not found{suffix}")
        return RegistryError(registry, f"{what}: unexpected HTTP {status}{suffix}")
