"""The hostile images whose bounds `test_resolver.py` checks without printing what they cost, measured here
the way `test_hostile_images.py` measures the rest (CPU in one run, peak traced memory in another; see
`support.bounded`), for the figures in docs/security.md:

    pytest -s -q tests/registry/test_hostile_image_figures.py

Each case must end with the error naming its bound, within the same bounds as the other hostile images
(the 100 MB os-release is twice the one `test_resolver.py` uses, and stored uncompressed so that the file
bound, not the compression ratio, is what stops it).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator, Iterator

import pytest

from distroguard.errors import ScanLimitExceeded
from distroguard.model import ImageFacts
from distroguard.registry.client import RegistryClient
from support.bounded import MAX_CPU_SECONDS, MAX_PEAK_BYTES, MB, no_disk_writes, resolve_bounded
from support.images import ImageBuilder, gzip_bomb, push
from support.registry_server import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.slow]

MEASURED: dict[str, tuple[float, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    yield
    for name, (cpu, peak) in MEASURED.items():
        print(f"hostile image {name:<22} CPU {cpu:5.2f} s  peak {peak / MB:6.1f} MB")


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient() as client:
        yield client


class _Content(io.RawIOBase):
    """`head`, then `#` bytes, `size` in all, made on demand."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        taken, self.head = self.head[:n], self.head[n:]
        buffer[:n] = taken + b"#" * (n - len(taken))
        self.left -= n
        return n


def _one_file_tar(name: str, size: int, head: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, _Content(head, size))
    return out.getvalue()


async def _measure(name: str, client: RegistryClient, ref: str) -> BaseException | ImageFacts:
    with no_disk_writes() as writes:
        outcome, cpu, peak = await resolve_bounded(client, ref)
    MEASURED[name] = (cpu, peak)
    assert not writes, writes
    assert cpu <= MAX_CPU_SECONDS, (name, cpu)
    assert peak <= MAX_PEAK_BYTES, (name, peak / MB)
    return outcome


async def test_a_gzip_bomb_of_one_gib(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    image = ImageBuilder().raw_layer(gzip_bomb(1 << 30), "none").build()  # already gzip: stored as is
    await push(registry.url, repo, "bomb", image)
    outcome = await _measure("gzip-bomb-1GiB", client, f"{registry.address}/{repo}:bomb")
    assert isinstance(outcome, ScanLimitExceeded), outcome
    assert "max_compression_ratio" in str(outcome)


async def test_a_100mb_os_release(registry: RegistryServer, repo: str, client: RegistryClient) -> None:
    """Stored uncompressed (a compressed one would trip the ratio bound first): the file bound stops it."""
    tar = _one_file_tar("etc/os-release", 100 * MB, b"ID=debian\n")
    await push(registry.url, repo, "os-release", ImageBuilder().raw_layer(tar, "none").build())
    outcome = await _measure("100MB-os-release", client, f"{registry.address}/{repo}:os-release")
    assert isinstance(outcome, ScanLimitExceeded), outcome
    assert "max_file_bytes" in str(outcome)
