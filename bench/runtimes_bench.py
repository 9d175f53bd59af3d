"""Benchmark: what looking for runtimes in files costs, on images with and without a runtime in Env.

Starts a real registry (Debian's docker-registry) on 127.0.0.1, pushes four images built on one Debian 12
base (with 1.2 MB of libraries, so the base weighs like a slim one), each with 4 app layers of ~2.4 MB:

- python in Env (the official images' way): the config announces the runtime;
- python installed by apt in the layer above the base (no Env);
- python installed by apt in the top layer (no Env);
- no runtime at all (no Env).

Each is resolved cold in `fast` mode (the baseline: what distroguard reads when no policy judges runtimes)
and in `runtimes` mode (a policy judges runtimes), and the bytes fetched, the layers read, the CPU time
(median of 5 cold runs) and the runtime found are printed side by side.

Run: python bench/runtimes_bench.py   (needs the test extra and docker-registry, as `scripts/test` installs)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.model import ImageFacts, ScanMode  # noqa: E402
from distroguard.registry.client import RegistryClient  # noqa: E402
from distroguard.resolver import Resolver  # noqa: E402
from inspect_bench import noise  # noqa: E402
from support.distros import DEBIAN_12_ROOT, ELF, database, dpkg  # noqa: E402
from support.images import BuiltImage, ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

RUNS = 5
MB = 1024 * 1024
APT_PYTHON = {
    "/usr/bin/python3.11": ELF + noise(7, 200_000),
    "/usr/lib/python3.11/os.py": b"# the standard library\n",
    "/var/lib/dpkg/status": database(
        dpkg("base-files", "12.4+deb12u5"),
        dpkg("libc6", "2.36-9+deb12u4"),
        dpkg("python3.11-minimal", "3.11.2-6+deb12u2"),
    ),
}


def image(python_at: int | None, env: bool = False) -> BuiltImage:
    """Base + 4 app layers; apt's python layer at position `python_at` (1: just above the base)."""
    base = {
        **DEBIAN_12_ROOT,
        **{f"usr/lib/x86_64-linux-gnu/lib{i}.so": ELF + noise(i, 60_000) for i in range(20)},
    }
    layers: list[dict[str, bytes]] = [
        {f"opt/app{n}/mod{i}.so": noise(100 + n * 10 + i, 400_000) for i in range(6)} for n in range(4)
    ]
    if python_at is not None:
        layers.insert(python_at - 1, APT_PYTHON)  # type: ignore[arg-type]
    builder = ImageBuilder().layer(base)
    for layer in layers:
        builder.layer(layer)
    if env:
        builder.env("PYTHON_VERSION=3.12.8")
    return builder.build()


async def cold(ref: str, mode: ScanMode) -> tuple[float, ImageFacts]:
    times = []
    facts = None
    for _ in range(RUNS):
        async with RegistryClient() as client:
            started = time.process_time()
            facts = await Resolver(client).resolve(ref, mode=mode)
            times.append(time.process_time() - started)
    assert facts is not None
    return statistics.median(times), facts


def layers_read(facts: ImageFacts) -> str:
    note = next(e.detail for e in facts.evidence if e.fact == "scan")
    return note.split("read ", 1)[1].split(" layers", 1)[0]


async def main() -> None:
    cases = {
        "python in Env": image(1, env=True),
        "apt python above the base": image(1),
        "apt python in the top layer": image(5),
        "no runtime": image(None),
    }
    with running_registry() as registry:
        print(f"{'image':<30} {'mode':<9} {'layers':>7} {'MB fetched':>11} {'CPU ms':>7}  runtime")
        for number, (name, built) in enumerate(cases.items()):
            await push(registry.url, f"bench/runtimes-{number}", "1", built)
            ref = f"{registry.address}/bench/runtimes-{number}:1"
            for mode in ("fast", "runtimes"):
                cpu, facts = await cold(ref, mode)  # type: ignore[arg-type]
                runtime = ", ".join(f"{r.name} {r.version}" for r in facts.runtimes) or "-"
                print(
                    f"{name:<30} {mode:<9} {layers_read(facts):>7} {facts.bytes_fetched / MB:>11.2f} "
                    f"{cpu * 1000:>7.1f}  {runtime}"
                )


if __name__ == "__main__":
    asyncio.run(main())
