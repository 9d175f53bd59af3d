"""Measuring one image lookup: its CPU time, its peak memory, and that it writes nothing to disk.

    outcome, cpu, peak = await resolve_bounded(client, ref)
    with no_disk_writes() as writes:
        ...
    assert not writes

Time and memory come from two separate runs of the same lookup (tracing allocations slows Python code
severalfold, so a traced run says nothing about time).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from distroguard.model import ImageFacts
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver, ResolverSettings

MB = 1024 * 1024
#: The bounds every hostile image must stay within, per image.
MAX_CPU_SECONDS = 2.0
MAX_PEAK_BYTES = 64 * MB


async def resolve_bounded(
    client: RegistryClient, ref: str, settings: ResolverSettings | None = None
) -> tuple[BaseException | ImageFacts, float, int]:
    """(outcome, CPU seconds, peak traced bytes) of resolving `ref` afresh (a new Resolver each run)."""

    async def once() -> BaseException | ImageFacts:
        try:
            return await Resolver(client, settings).resolve(ref, budget=60)
        except BaseException as exc:  # the outcome is what the test checks
            return exc

    cpu = time.process_time()
    outcome = await once()
    cpu = time.process_time() - cpu
    tracemalloc.start()
    try:
        traced = await once()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(traced) is type(outcome)
    return outcome, cpu, peak


# ---------------------------------------------------------------------- disk writes

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_watching: list[list[str]] = []
_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching or event != "open":
        return
    path, mode, flags = args
    if isinstance(mode, str):
        writes = any(c in mode for c in "wax+")
    else:
        writes = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
    if writes:
        _watching[-1].append(str(path))


@contextlib.contextmanager
def no_disk_writes() -> Iterator[list[str]]:
    """Collect the paths this process opens for writing inside the block (via the `open` audit event).

    Audit hooks cannot be removed: one is installed on first use and is idle outside the block.
    """
    global _installed
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
    writes: list[str] = []
    _watching.append(writes)
    try:
        yield writes
    finally:
        _watching.remove(writes)
