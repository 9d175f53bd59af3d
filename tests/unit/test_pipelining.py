"""A stream started ahead of its reader: its bytes in order once taken, nothing left running once dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from distroguard.errors import DigestMismatch
from distroguard.registry.pipelining import AheadStream


class Source:
    """A byte stream that records how far it got and whether it was closed."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks, self.error = chunks, error
        self.sent = 0
        self.closed = False
        self.gate = asyncio.Event()

    async def stream(self) -> AsyncGenerator[bytes, None]:
        try:
            for chunk in self.chunks:
                await self.gate.wait()
                self.sent += 1
                yield chunk
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


class Taken:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_the_reader_gets_every_byte_in_order_the_first_chunk_read_ahead() -> None:
    source, taken = Source([b"a", b"b", b"c"]), Taken()
    source.gate.set()
    ahead = AheadStream(source.stream(), taken)
    await asyncio.sleep(0.01)
    assert source.sent == 1  # the first chunk is in before anyone reads
    assert taken.count == 0
    assert [chunk async for chunk in ahead.stream()] == [b"a", b"b", b"c"]
    assert taken.count == 1
    assert source.closed
    await ahead.aclose()  # harmless once read
    assert taken.count == 1


async def test_a_stream_dropped_before_its_first_chunk_is_cancelled_and_closed() -> None:
    source, taken = Source([b"a"]), Taken()
    ahead = AheadStream(source.stream(), taken)
    await asyncio.sleep(0.01)  # waiting at the gate: the request is under way
    await ahead.aclose()
    assert taken.count == 1
    assert source.closed
    assert source.sent == 0
    assert not [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_first_chunk"]


async def test_the_streams_error_reaches_the_reader_and_no_task_keeps_it() -> None:
    error = DigestMismatch("blob", "sha256:" + "0" * 64, "sha256:" + "1" * 64)
    source = Source([b"a"], error)
    source.gate.set()
    ahead = AheadStream(source.stream(), Taken())
    with pytest.raises(DigestMismatch):
        _ = [chunk async for chunk in ahead.stream()]
    assert source.closed


async def test_an_error_before_the_first_chunk_is_kept_for_the_reader() -> None:
    source = Source([], ConnectionResetError("gone"))
    ahead = AheadStream(source.stream(), Taken())
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionResetError):
        _ = [chunk async for chunk in ahead.stream()]


async def test_a_reader_that_stops_early_closes_the_stream() -> None:
    source = Source([b"a", b"b", b"c"])
    source.gate.set()
    ahead = AheadStream(source.stream(), Taken())
    reader = ahead.stream()
    assert await anext(reader) == b"a"
    await reader.aclose()
    assert source.closed
    assert source.sent == 1
