"""Benchmark: how fast the `distroguard` command starts and answers, as a CI pipeline runs it per image.

Starts a real registry (Debian's docker-registry) on 127.0.0.1, pushes small images (a few distributions,
each with a Python layer on top) and runs, each in a fresh process, N times round the images:

- `distroguard --version`                                   (target: median <= 150 ms wall)
- `distroguard inspect IMAGE -o json`                       (target: median <= 350 ms wall)
- `distroguard check IMAGE --policy policies/no-musl.yaml`  (target: median <= 350 ms wall)

next to baselines from the same run: `python -c pass`, `python -c "import click"`, FLOOR (importing
click and aiohttp and defining one pydantic model: what a command that resolves images cannot do without),
and FLOOR without the system's CA bundle loaded (aiohttp builds two TLS contexts when imported, each
parsing the whole bundle: that row says how much of FLOOR that is; nothing of distroguard runs so).
Each row prints the median wall time and the median CPU time (user + system) of the process. On a shared
machine wall time is noisy: judge by the CPU column and its ratio to the click baseline, or run with
`--instructions`, which adds each row's count of instructions executed (one process under valgrind's
callgrind, the first image only): a figure that does not depend on the machine's load. Each command is run
as the `distroguard` console script runs it (`from distroguard.cli.main import main; main()`), with the
caches the CLI keeps (base images, EOL catalog) and Python's bytecode in a temporary directory (an installed
package has its bytecode; PYTHONDONTWRITEBYTECODE is cleared for the measured processes).

Run: python bench/cli_startup_bench.py [--runs N] [--instructions]   (needs the test extra and
docker-registry, as `scripts/test` installs; --instructions needs valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.distros import (  # noqa: E402
    ALPINE_ROOT,
    DEBIAN_11_ROOT,
    DEBIAN_12_ROOT,
    ELF,
    UBUNTU_2404_ROOT,
    UBUNTU_MUSL_ROOT,
    Files,
)
from support.images import ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

POLICY = ROOT / "policies" / "no-musl.yaml"
#: What any command that resolves images must import: the floor under `inspect` and `check` here.
FLOOR = "import click, aiohttp, pydantic\nclass Probe(pydantic.BaseModel):\n    x: int"
#: FLOOR with the CA bundle left unread while aiohttp is imported (its two module-level TLS contexts).
FLOOR_NO_CA = (
    "import ssl\nread = ssl.SSLContext.set_default_verify_paths\n"
    "ssl.SSLContext.set_default_verify_paths = lambda self: None\n"
    "import aiohttp\nssl.SSLContext.set_default_verify_paths = read\n" + FLOOR
)
CONSOLE_SCRIPT = "import sys; from distroguard.cli.main import main; sys.exit(main())"
ROOTS: dict[str, Files] = {
    "debian12": DEBIAN_12_ROOT,
    "debian11": DEBIAN_11_ROOT,
    "ubuntu2404": UBUNTU_2404_ROOT,
    "alpine": ALPINE_ROOT,
    "ubuntu-musl": UBUNTU_MUSL_ROOT,
}


async def push_images(registry_url: str, address: str) -> list[str]:
    refs = []
    for name, root in ROOTS.items():
        image = (
            ImageBuilder()
            .layer(root)
            .layer({"usr/local/bin/python3.12": ELF})
            .env("PYTHON_VERSION=3.12.8")
            .build()
        )
        await push(registry_url, f"bench/{name}", "1", image)
        refs.append(f"{address}/bench/{name}:1")
    return refs


@dataclass
class Row:
    command: str
    wall_ms: float
    cpu_ms: float
    note: str
    argv: Sequence[str] = ()
    """The first process's command line (what `--instructions` counts)."""
    ok: Sequence[int] = (0,)
    instructions: float | None = None


def run_once(argv: Sequence[str], env: dict[str, str], ok: Sequence[int]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def measure(
    command: str,
    argvs: Sequence[Sequence[str]],
    env: dict[str, str],
    runs: int,
    note: str,
    ok: Sequence[int] = (0,),
) -> Row:
    """Medians over `runs` processes, cycling through `argvs` (one per image); the first of each is run once
    unmeasured, so that bytecode is compiled, as it is in an installed package."""
    for argv in argvs:
        run_once(argv, env, ok)
    samples = [run_once(argvs[i % len(argvs)], env, ok) for i in range(runs)]
    return Row(
        command,
        statistics.median(w for w, _ in samples) * 1e3,
        statistics.median(c for _, c in samples) * 1e3,
        note,
        argvs[0],
        ok,
    )


def instructions(argv: Sequence[str], env: dict[str, str], ok: Sequence[int]) -> float:
    """Instructions one process executes, counted by valgrind's callgrind (its total, `Collected`)."""
    with tempfile.TemporaryDirectory(prefix="distroguard-callgrind-") as scratch:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
    found = re.search(rb"Collected : (\d+)", done.stderr)
    if done.returncode not in ok or found is None:
        raise SystemExit(f"callgrind of {' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="processes started per row (default 25)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each row's instructions under valgrind (independent of the machine's load)",
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    python = sys.executable
    cli = [python, "-c", CONSOLE_SCRIPT]
    policy = ["--policy", str(POLICY)]
    with (
        tempfile.TemporaryDirectory(prefix="distroguard-cli-bench-") as scratch,
        running_registry() as registry,
    ):
        env = {
            **os.environ,
            "XDG_CACHE_HOME": scratch,
            "DISTROGUARD_BASES_CACHE": str(Path(scratch) / "bases.json"),
            "DOCKER_CONFIG": scratch,
            # Bytecode as an installed package has it, kept out of the source tree.
            "PYTHONPYCACHEPREFIX": str(Path(scratch) / "pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        refs = asyncio.run(push_images(registry.url, registry.address))
        rows = [
            measure("python -c pass", [[python, "-c", "pass"]], env, args.runs, "baseline: the interpreter"),
            measure(
                'python -c "import click"',
                [[python, "-c", "import click"]],
                env,
                args.runs,
                "baseline: the interpreter and click",
            ),
            measure(
                "python -c FLOOR",
                [[python, "-c", FLOOR]],
                env,
                args.runs,
                "baseline: click, aiohttp and one pydantic model",
            ),
            measure(
                "python -c FLOOR, no CA bundle read at import",
                [[python, "-c", FLOOR_NO_CA]],
                env,
                args.runs,
                "baseline: FLOOR less aiohttp's two TLS contexts",
            ),
            measure("distroguard --version", [[*cli, "--version"]], env, args.runs, "target <= 150 ms wall"),
            measure(
                "distroguard inspect IMAGE -o json",
                [[*cli, "inspect", ref, "-o", "json"] for ref in refs],
                env,
                args.runs,
                "target <= 350 ms wall",
            ),
            measure(
                f"distroguard check IMAGE --policy {POLICY.relative_to(ROOT)}",
                [[*cli, "check", ref, *policy] for ref in refs],
                env,
                args.runs,
                "target <= 350 ms wall",
                ok=(0, 1),
            ),
        ]
        if args.instructions:
            for row in rows:
                row.instructions = instructions(row.argv, env, row.ok)
    click_cpu = rows[1].cpu_ms
    print(f"{len(refs)} small images on a loopback registry; {args.runs} processes per row; medians")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    counted = f" {'M instr':>8}" if args.instructions else ""
    print(f"{'command':<58} {'wall ms':>8} {'cpu ms':>8} {'cpu/click':>9}{counted}  note")
    for row in rows:
        ratio = row.cpu_ms / click_cpu
        count = f" {row.instructions / 1e6:>8.0f}" if row.instructions is not None else ""
        print(f"{row.command:<58} {row.wall_ms:>8.1f} {row.cpu_ms:>8.1f} {ratio:>9.2f}{count}  {row.note}")


if __name__ == "__main__":
    main()
