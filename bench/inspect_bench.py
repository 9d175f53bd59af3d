"""Benchmark: bytes read by a cold `inspect`, and the cost of a warm lookup.

Starts a real registry (Debian's docker-registry) on 127.0.0.1, pushes a generated image whose base
layer is under 20% of its size, and prints, each beside its baseline from the same run:

- cold lookup, fast mode: bytes_fetched / image_size (target <= 0.25) vs thorough mode (reads all);
- warm lookup of a cached digest: microseconds per call (target <= 20) vs a bare cache read.

Run: python bench/inspect_bench.py   (needs the test extra and docker-registry, as `scripts/test` installs)
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.registry.client import RegistryClient  # noqa: E402
from distroguard.resolver import Resolver  # noqa: E402
from support.distros import DEBIAN_12_ROOT, ELF  # noqa: E402
from support.images import BuiltImage, ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

WARM_CALLS = 100_000


def noise(seed: int, size: int) -> bytes:
    """Bytes that compress about as well as real binaries do."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 12)) for _ in range(4096)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def generated_image() -> BuiltImage:
    base = {
        **DEBIAN_12_ROOT,
        **{f"usr/lib/x86_64-linux-gnu/lib{i}.so": ELF + noise(i, 60_000) for i in range(20)},
    }
    builder = ImageBuilder().layer(base, created_by="debian base")
    for layer in range(4):
        files = {f"opt/app{layer}/mod{i}.so": noise(100 + layer * 10 + i, 400_000) for i in range(6)}
        builder.layer(files, "gzip" if layer % 2 else "zstd", created_by=f"app layer {layer}")
    return builder.env("PYTHON_VERSION=3.12.8").build()


async def cold(ref: str, mode: str) -> tuple[float, int, int]:
    async with RegistryClient() as client:
        started = time.perf_counter()
        facts = await Resolver(client).resolve(ref, mode=mode)  # type: ignore[arg-type]
        return time.perf_counter() - started, facts.bytes_fetched, facts.image_size


async def warm(ref: str) -> tuple[float, float]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        facts = await resolver.resolve(ref)
        key = (facts.digest or "", facts.platform, facts.mode)
        store = resolver.cache.facts
        started = time.perf_counter()
        for _ in range(WARM_CALLS):
            await resolver.resolve(ref)
        lookup = (time.perf_counter() - started) / WARM_CALLS
        started = time.perf_counter()
        for _ in range(WARM_CALLS):
            store.peek(key)
        bare = (time.perf_counter() - started) / WARM_CALLS
        return lookup, bare


async def main() -> None:
    image = generated_image()
    base_share = image.layers[0].size / (len(image.config) + sum(layer.size for layer in image.layers))
    with running_registry() as registry:
        await push(registry.url, "bench/app", "1", image)
        ref = f"{registry.address}/bench/app:1"
        pinned = f"{registry.address}/bench/app@{image.digest}"
        fast_s, fast_bytes, size = await cold(ref, "fast")
        thorough_s, thorough_bytes, _ = await cold(ref, "thorough")
        warm_s, bare_s = await warm(pinned)
        warm_tag_s, _ = await warm(ref)
    print(f"image: {len(image.layers)} layers, {size / 1e6:.2f} MB, base layer {base_share:.1%} of it")
    print(f"{'measure':<44} {'distroguard':>14} {'baseline':>14}  baseline is")
    print(
        f"{'cold lookup bytes_fetched / image_size':<44} {fast_bytes / size:>14.3f} "
        f"{thorough_bytes / size:>14.3f}  --thorough (reads every layer); target <= 0.25"
    )
    print(f"{'cold lookup time (ms)':<44} {fast_s * 1e3:>14.1f} {thorough_s * 1e3:>14.1f}  --thorough")
    print(
        f"{'warm lookup of a cached digest (us/call)':<44} {warm_s * 1e6:>14.2f} {bare_s * 1e6:>14.2f}"
        "  a bare cache read; target <= 20"
    )
    print(f"{'warm lookup of a cached tag (us/call)':<44} {warm_tag_s * 1e6:>14.2f} {bare_s * 1e6:>14.2f}")


if __name__ == "__main__":
    asyncio.run(main())
