"""Benchmark: what each hostile image costs to refuse (or resolve), beside a normal image.

Starts a real registry (Debian's docker-registry) on 127.0.0.1, pushes the hostile images of
`tests/support/hostile_images.py` and a plain Debian 12 image (the baseline), and resolves each afresh
twice: CPU time from one run, peak traced memory (`tracemalloc`) from the other (`support.bounded`).
Prints, per image, its outcome, its figures and the baseline's, from the same run. The bound the project
promises per image (docs/security.md) is printed beside them: <= 2 s CPU and <= 64 MB traced peak.

The tests check each image's outcome (the error naming the bound that stops it); the figures belong here,
where a slow or busy machine changes a number, not a verdict.

Run: python bench/hostile_images_bench.py   (needs the test extra and docker-registry, as `scripts/test`
installs)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.model import ImageFacts  # noqa: E402
from distroguard.registry.client import RegistryClient  # noqa: E402
from support import hostile_images as hostile  # noqa: E402
from support.bounded import measure  # noqa: E402
from support.distros import DEBIAN_12_ROOT  # noqa: E402
from support.images import BuiltImage, BuiltIndex, ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

MB = 1024 * 1024
CPU_BOUND_SECONDS = 2.0
PEAK_BOUND_BYTES = 64 * MB


def _wide_index() -> BuiltIndex:
    return hostile.wide_index(ImageBuilder().layer(DEBIAN_12_ROOT).build(), 10_000)


CASES: dict[str, Callable[[], BuiltImage | BuiltIndex]] = {
    "gzip bomb (1 GiB of zeros)": hostile.gzip_bomb_image,
    "zstd bomb (1 GiB of zeros)": hostile.zstd_bomb_image,
    "1,000,000 tar entries": lambda: ImageBuilder().raw_layer(hostile.million_entries(), "none").build(),
    "64 KB path names": lambda: ImageBuilder().raw_layer(hostile.long_path_layer()).build(),
    "symlink loops and escapes": hostile.symlink_loops_image,
    "hard link to nothing": hostile.hardlink_to_nothing_image,
    "100 MB os-release": hostile.big_os_release_image,
    "invalid UTF-8 in paths": lambda: ImageBuilder().raw_layer(hostile.invalid_utf8_layer()).build(),
    "invalid UTF-8 in the config": hostile.invalid_utf8_config_image,
    "1,000 layers": lambda: hostile.many_layers(1000),
    "index of 10,000 platforms": _wide_index,
    "100 MB config (declared)": lambda: hostile.big_config_images()[0],
    "100 MB config (declared small)": lambda: hostile.big_config_images()[1],
    **hostile.RPM_DATABASE_CASES,
}


def outcome_of(outcome: BaseException | ImageFacts) -> str:
    if isinstance(outcome, ImageFacts):
        os_name = outcome.os.id if outcome.os else "no OS"
        return f"resolved: {os_name}, {outcome.libc.family}"
    return f"{type(outcome).__name__}: {str(outcome)[:60]}"


async def main() -> None:
    with running_registry() as registry:
        async with RegistryClient() as client:
            await push(registry.url, "bench/normal", "1", ImageBuilder().layer(DEBIAN_12_ROOT).build())
            _, base_cpu, base_peak = await measure(client, f"{registry.address}/bench/normal:1")
            print(f"bound promised per image: <= {CPU_BOUND_SECONDS:g} s CPU, <= {PEAK_BOUND_BYTES // MB} MB")
            print(
                f"baseline (plain Debian 12 image): {base_cpu:.3f} s CPU, {base_peak / MB:.1f} MB traced peak"
            )
            print(f"{'image':<40} {'CPU s':>7} {'peak MB':>8} {'vs baseline':>14}  outcome")
            for number, (name, build) in enumerate(CASES.items()):
                repo = f"bench/hostile-{number}"
                await push(registry.url, repo, "1", build())
                outcome, cpu, peak = await measure(client, f"{registry.address}/{repo}:1")
                over = cpu > CPU_BOUND_SECONDS or peak > PEAK_BOUND_BYTES
                ratio = f"x{cpu / base_cpu:.1f} / x{peak / base_peak:.1f}" if base_cpu and base_peak else "-"
                print(
                    f"{name:<40} {cpu:>7.2f} {peak / MB:>8.1f} {ratio:>14}  {outcome_of(outcome)}"
                    + ("  OVER THE BOUND" if over else "")
                )


if __name__ == "__main__":
    asyncio.run(main())
