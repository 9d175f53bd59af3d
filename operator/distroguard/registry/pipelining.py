"""Pipelining: a blob's request sent now, its bytes read later, while the caller waits for another answer.

A cold lookup needs an image's config and its bottom layer, and both are named by the manifest: sending the
layer's request beside the config's saves a round trip to a distant registry. `AheadStream` runs the first
step of a byte stream (request, answer, first chunk) in a task of its own; the reader takes the stream over
with `stream()`, or drops it with `aclose()`. Nothing is verified here: the stream is the client's own, which
bounds and verifies its bytes as it always does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable


async def _first_chunk(stream: AsyncGenerator[bytes, None]) -> tuple[bytes | None, Exception | None]:
    """The stream's first chunk (None at its end), or the error it raised: never raised from the task, since
    a task left holding an error is one the event loop's owner (kopf, at shutdown) raises as its own."""
    try:
        return await anext(stream, None), None
    except Exception as exc:
        return None, exc


class AheadStream:
    """A byte stream started ahead of its reader; `stream()` or `aclose()` ends it, once.

    `on_taken` is called once, when the reader takes the stream over or it is dropped: from then on, the
    stream no longer waits on a reader that might itself wait on another request (the client counts streams
    still ahead, so that they never hold every connection slot of a registry).
    """

    def __init__(self, stream: AsyncGenerator[bytes, None], on_taken: Callable[[], None]) -> None:
        self._stream = stream
        self._on_taken: Callable[[], None] | None = on_taken
        self._first = asyncio.ensure_future(_first_chunk(stream))

    def _taken(self) -> None:
        on_taken, self._on_taken = self._on_taken, None
        if on_taken is not None:
            on_taken()

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The stream's bytes, in order, the first chunk included."""
        self._taken()
        try:
            chunk, error = await self._first
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
            async for chunk in self._stream:
                yield chunk
        finally:
            await self._settle()

    async def aclose(self) -> None:
        """Drop the stream: its request is cancelled, or its answer's connection closed."""
        self._taken()
        await self._settle()

    async def _settle(self) -> None:
        if not self._first.done():
            self._first.cancel()
        await asyncio.wait([self._first])
        await self._stream.aclose()
