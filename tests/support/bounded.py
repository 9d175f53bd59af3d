"""One image lookup from a fresh resolver, and what it costs: its outcome, that it writes nothing to disk,
and (for the benchmark) its CPU time and peak traced memory.

    outcome = await resolve_afresh(client, ref)
    outcome, cpu, peak = await measure(client, ref)
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


async def resolve_afresh(
    client: RegistryClient, ref: str, settings: ResolverSettings | None = None
) -> BaseException | ImageFacts:
    """The outcome (facts, or the error) of resolving `ref` with a new Resolver (no cache), within 60 s."""
    try:
        return await Resolver(client, settings).resolve(ref, budget=60)
    except BaseException as exc:  # the outcome is what the caller checks
        return exc


async def measure(
    client: RegistryClient, ref: str, settings: ResolverSettings | None = None
) -> tuple[BaseException | ImageFacts, float, int]:
    """(outcome, CPU seconds, peak traced bytes) of resolving `ref` afresh, from two runs."""
    cpu = time.process_time()
    outcome = await resolve_afresh(client, ref, settings)
    cpu = time.process_time() - cpu
    tracemalloc.start()
    try:
        traced = await resolve_afresh(client, ref, settings)
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
