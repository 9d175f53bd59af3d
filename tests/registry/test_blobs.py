"""Blobs: whole reads and streams, verified, bounded, resumed after a dropped connection."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from distroguard.errors import DeadlineExceeded, DigestMismatch, ScanLimitExceeded, SourceError
from distroguard.registry.client import RegistryClient
from distroguard.registry.manifest import ByteMeter, Descriptor, digest_of
from distroguard.registry.settings import RegistrySettings
from support.images import BuiltImage, File, ImageBuilder, push
from support.proxy import CountingProxy, drop_blob_after
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
FAST = RegistrySettings(backoff_initial=0.01, backoff_max=0.05)


def _big_image() -> BuiltImage:
    # Random bytes do not compress: the layer blob is about 1 MiB.
    return ImageBuilder().layer({"data/blob": File(os.urandom(1024 * 1024))}, "none").build()


def _layer(image: BuiltImage, index: int = 0) -> Descriptor:
    layer = image.layers[index]
    return Descriptor(layer.media_type, layer.digest, layer.size)


async def test_config_blob(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer({"a": "b"}).env("PYTHON_VERSION=3.12.1").build()
    await push(registry.url, repo, "1", image)
    desc = Descriptor(image.config_media_type, image.config_digest, len(image.config))
    meter = ByteMeter()
    async with RegistryClient() as client:
        body = await client.read_blob(registry.ref(repo), desc, max_bytes=1 << 20, meter=meter)
    assert body == image.config
    assert meter.total == len(image.config)


async def test_blob_over_the_bound_is_refused_before_any_request(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo).model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        with pytest.raises(ScanLimitExceeded, match="max_bytes=1000"):
            await client.read_blob(ref, _layer(image), max_bytes=1000)
    assert proxy.records == []


async def test_stream_in_chunks_and_stop_early(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo).model_copy(update={"registry": proxy.address})
    meter = ByteMeter()
    async with RegistryClient(RegistrySettings(concurrency=1)) as client:
        stream = client.stream_blob(ref, _layer(image), chunk_size=4096, meter=meter)
        received = b""
        async for chunk in stream:
            assert 0 < len(chunk) <= 4096
            received += chunk
            if len(received) >= 16 * 1024:
                break
        await stream.aclose()
        assert image.layers[0].data.startswith(received)
        assert meter.total < image.layers[0].size  # the rest was never read
        # The stream gave its connection slot back (concurrency=1): the next read does not wait.
        whole = await asyncio.wait_for(client.read_blob(ref, _layer(image), max_bytes=2 << 20), timeout=10)
    assert whole == image.layers[0].data


async def test_full_stream_is_verified(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer({"etc/os-release": "ID=debian\n"}, "zstd").build()
    await push(registry.url, repo, "1", image)
    async with RegistryClient() as client:
        data = b"".join([c async for c in client.stream_blob(registry.ref(repo), _layer(image))])
    assert data == image.layers[0].data


async def test_corrupted_blob_is_detected(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer({"payload": File(b"good data " * 1000)}, "none").build()
    await push(registry.url, repo, "1", image)
    hexdigest = image.layers[0].digest.removeprefix("sha256:")
    (stored,) = [p for p in registry.blob_paths() if p.parent.name == hexdigest]
    data = bytearray(stored.read_bytes())
    data[600] ^= 0xFF  # same size, one byte flipped: only the digest can tell
    stored.write_bytes(bytes(data))
    async with RegistryClient() as client:
        chunks: list[bytes] = []

        async def consume() -> None:
            async for chunk in client.stream_blob(registry.ref(repo), _layer(image)):
                chunks.append(chunk)

        with pytest.raises(DigestMismatch, match=image.layers[0].digest):
            await consume()
        assert len(b"".join(chunks)) == image.layers[0].size  # every byte came, then the verdict
        with pytest.raises(DigestMismatch):
            await client.read_blob(registry.ref(repo), _layer(image), max_bytes=1 << 20)


async def test_dropped_connection_resumes_with_a_range_request(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url, hooks=[drop_blob_after(registry.url, 300_000)])
    ref = registry.ref(repo).model_copy(update={"registry": proxy.address})
    async with RegistryClient(FAST) as client:
        data = b"".join([c async for c in client.stream_blob(ref, _layer(image))])
    assert data == image.layers[0].data
    gets = [r for r in proxy.records if r.kind == "blobs"]
    assert len(gets) == 2
    assert "Range" not in gets[0].headers
    assert gets[1].headers["Range"].startswith("bytes=")
    assert gets[1].status == 206
    resumed_at = int(gets[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 300_000


async def test_offset_reads_the_tail(registry: RegistryServer, repo: str) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    data = image.layers[0].data
    async with RegistryClient() as client:
        tail = b"".join([c async for c in client.stream_blob(registry.ref(repo), _layer(image), offset=1000)])
    assert tail == data[1000:]


async def test_waiting_for_a_connection_slot_honours_the_deadline(
    registry: RegistryServer, repo: str
) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    async with RegistryClient(RegistrySettings(concurrency=1)) as client:
        held = client.stream_blob(registry.ref(repo), _layer(image))
        await anext(held)  # holds the only slot
        deadline = asyncio.get_running_loop().time() + 0.3
        with pytest.raises(DeadlineExceeded, match="connection slots"):
            await client.read_blob(registry.ref(repo), _layer(image), max_bytes=2 << 20, deadline=deadline)
        await held.aclose()


async def test_never_more_than_the_descriptor_says(registry: RegistryServer, repo: str) -> None:
    image = _big_image()
    await push(registry.url, repo, "1", image)
    layer = image.layers[0]
    short = Descriptor(layer.media_type, layer.digest, layer.size - 10)
    async with RegistryClient() as client:
        received = 0

        async def consume() -> None:
            nonlocal received
            async for chunk in client.stream_blob(registry.ref(repo), short):
                received += len(chunk)

        with pytest.raises(SourceError, match="more than the descriptor's"):
            await consume()
    assert received <= short.size


async def test_empty_blob_needs_no_request(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(registry.url)
    ref = registry.ref(repo).model_copy(update={"registry": proxy.address})
    empty = Descriptor("application/vnd.oci.empty.v1+json", digest_of(b""), 0)
    async with RegistryClient() as client:
        assert await client.read_blob(ref, empty, max_bytes=10) == b""
    assert proxy.records == []
