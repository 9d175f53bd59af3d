"""Redirects, retries, Retry-After, deadlines, the plain-HTTP rule and TLS with a custom CA."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from distroguard.errors import (
    DeadlineExceeded,
    InsecureRegistryError,
    RegistryError,
    RegistryUnavailable,
)
from distroguard.model import ImageRef, Platform
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.manifest import Descriptor
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.source import RegistrySource
from support.images import BuiltImage, ImageBuilder, basic_header, push
from support.proxy import CountingProxy, fail, redirect_blobs
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer, free_port

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
FAST = RegistrySettings(backoff_initial=0.01, backoff_max=0.05)


def _image() -> BuiltImage:
    return ImageBuilder().layer({"etc/os-release": "ID=debian\n"}).build()


def _layer(image: BuiltImage) -> Descriptor:
    layer = image.layers[0]
    return Descriptor(layer.media_type, layer.digest, layer.size)


# ---------------------------------------------------------------------- redirects


async def test_authorization_is_not_forwarded_to_another_host(
    basic_registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image()
    await push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth)
    # "Storage": another origin (port) that reaches the blobs with access of its own, like a
    # presigned URL. The registry front redirects blob GETs there.
    assert basic_registry.push_auth is not None
    storage = await make_proxy(basic_registry.url, upstream_auth=basic_header(*basic_registry.push_auth))
    front = await make_proxy(basic_registry.url, hooks=[redirect_blobs(storage.url)])
    ref = basic_registry.ref(repo, "1").model_copy(update={"registry": front.address})
    store = CredentialStore({front.address: Credentials(TEST_USER, TEST_PASSWORD)})
    async with RegistryClient(credentials=store) as client:
        source = RegistrySource(client, ref)
        resolved = await source.resolve(Platform())
        layer = await source.read_blob(resolved.manifest.layers[0], max_bytes=1 << 20)
    assert layer == image.layers[0].data
    blob_requests = [r for r in front.records if r.kind == "blobs"]
    assert blob_requests
    assert all(r.status == 307 for r in blob_requests)
    assert all("Authorization" in r.headers for r in blob_requests)
    assert [r.kind for r in storage.records] == ["blobs", "blobs"]  # config and layer
    assert all("Authorization" not in r.headers for r in storage.records)


async def test_redirect_loops_are_cut(registry: RegistryServer, repo: str, make_proxy: MakeProxy) -> None:
    image = _image()
    await push(registry.url, repo, "1", image)
    loop_proxy = await make_proxy(registry.url)
    loop_proxy.hooks.append(redirect_blobs(loop_proxy.url))  # redirects to itself, forever
    ref = registry.ref(repo).model_copy(update={"registry": loop_proxy.address})
    async with RegistryClient(RegistrySettings(max_redirects=3)) as client:
        with pytest.raises(RegistryError, match="more than 3 redirects"):
            await client.read_blob(ref, _layer(image), max_bytes=1 << 20)
    assert loop_proxy.count("GET", "blobs") == 4


async def test_redirect_to_plain_http_elsewhere_is_refused(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image()
    await push(registry.url, repo, "1", image)
    # Refused before any connection: the name is never even resolved.
    front = await make_proxy(registry.url, hooks=[redirect_blobs("http://storage.example.invalid")])
    ref = registry.ref(repo).model_copy(update={"registry": front.address})
    async with RegistryClient() as client:
        with pytest.raises(InsecureRegistryError, match=r"redirect to plain HTTP at another host refused"):
            await client.read_blob(ref, _layer(image), max_bytes=1 << 20)


# ---------------------------------------------------------------------- retries


async def test_server_errors_are_retried(registry: RegistryServer, repo: str, make_proxy: MakeProxy) -> None:
    image = _image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url, hooks=[fail(2, 500, kind="manifests")])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient(FAST) as client:
        assert await client.head_digest(ref) == image.digest
    assert [r.status for r in proxy.records] == [500, 500, 200]


async def test_retry_after_seconds_is_honoured(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url, hooks=[fail(1, 429, retry_after="1")])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient(FAST) as client:
        started = time.monotonic()
        assert await client.head_digest(ref) == image.digest
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5
    assert [r.status for r in proxy.records] == [429, 200]


async def test_retry_after_http_date_is_honoured(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _image()
    await push(registry.url, repo, "1", image)
    answered: list[float] = []

    async def busy_until(request: web.Request) -> web.StreamResponse | None:
        if answered:
            return None
        # An HTTP date has whole seconds: this one is 1.5 to 2.5 s after the answer.
        answered.append(time.time())
        when = email.utils.formatdate(answered[0] + 2.5, usegmt=True)
        return web.Response(status=503, text="injected failure", headers={"Retry-After": when})

    proxy = await make_proxy(registry.url, hooks=[busy_until])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient(FAST) as client:
        await client.head_digest(ref)
    assert [r.status for r in proxy.records] == [503, 200]
    waited = proxy.records[1].at - proxy.records[0].at  # from the 503's answer to the retry's
    assert 1.4 <= waited < 2.5 + 5, waited


async def test_giving_up_names_the_registry_and_the_failure(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(registry.url, hooks=[fail(100, 503)])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient(RegistrySettings(max_retries=2, backoff_initial=0.01)) as client:
        with pytest.raises(RegistryUnavailable, match=rf"{proxy.address}: .*HTTP 503.*3 attempts"):
            await client.head_digest(ref)
    assert proxy.count() == 3


async def test_connection_refused_is_retried_then_unavailable() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    ref = ImageRef(registry=address, repository="x/y", tag="1")
    async with RegistryClient(RegistrySettings(max_retries=1, backoff_initial=0.01)) as client:
        with pytest.raises(RegistryUnavailable, match=rf"registry {address}: .*2 attempts"):
            await client.head_digest(ref)


# ---------------------------------------------------------------------- deadlines


async def test_retry_after_past_the_deadline_fails_at_once(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(registry.url, hooks=[fail(1, 429, retry_after="30")])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DeadlineExceeded, match=r"HTTP 429.*would pass the deadline"):
            await client.head_digest(ref, deadline=started + 10)
        # Waiting for the deadline would take 10 s, and the Retry-After 30 s.
        assert loop.time() - started < 5


async def test_slow_registry_meets_the_deadline(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    async def stall(request: web.Request) -> web.StreamResponse | None:
        await asyncio.sleep(10)
        return None

    proxy = await make_proxy(registry.url, hooks=[stall])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DeadlineExceeded, match=rf"registry {proxy.address}: .*deadline"):
            await client.head_digest(ref, deadline=started + 0.3)
        # The registry answers after 10 s: anything near 0.3 s is the deadline at work.
        assert loop.time() - started < 4
