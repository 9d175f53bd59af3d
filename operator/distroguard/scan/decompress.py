"""Push-style layer decompression (gzip, zstd or none, told apart by magic bytes), bounded in output.

A layer is fed in network-sized chunks; each call yields decompressed pieces no bigger than `piece_size`,
so a small hostile input (a "bomb") can never produce a large buffer at once. The total output and the
output/input ratio are bounded: a real layer compresses a few times, a bomb a thousand times.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from distroguard.errors import ScanLimitExceeded, SourceError

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

Compression = Literal["gzip", "zstd", "none"]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAGIC_LEN = 4


@dataclass(frozen=True, slots=True)
class DecompressionLimits:
    max_output: int = 4 * 1024**3
    """Decompressed bytes allowed for one layer."""
    max_ratio: int = 100
    """Largest output/input ratio tolerated once `ratio_grace` bytes have come out (bombs exceed it)."""
    ratio_grace: int = 64 * 1024**2
    """Output below which the ratio is not checked (small files of zeros compress very well)."""
    piece_size: int = 256 * 1024
    """Largest piece handed on at once."""


def sniff(head: bytes) -> Compression:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Codec(Protocol):
    def pieces(self, data: bytes, piece: int) -> Iterator[bytes]: ...
    def finish(self) -> None: ...


class _Plain:
    def pieces(self, data: bytes, piece: int) -> Iterator[bytes]:
        for i in range(0, len(data), piece):
            yield data[i : i + piece]

    def finish(self) -> None:
        return None


class _Gzip:
    """gzip, including several concatenated members (RFC 1952 allows it)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def pieces(self, data: bytes, piece: int) -> Iterator[bytes]:
        while data:
            try:
                out = self._d.decompress(data, piece)
            except zlib.error as exc:
                raise SourceError(f"layer is not valid gzip: {exc}") from exc
            if out:
                yield out
            if self._d.eof:
                data = self._d.unused_data
                if data.strip(b"\x00"):
                    self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    data = b""
            else:
                data = self._d.unconsumed_tail

    def finish(self) -> None:
        if not self._d.eof:
            raise SourceError("layer gzip stream is truncated")


class _Zstd:
    def __init__(self) -> None:
        self._d = zstd.ZstdDecompressor()

    def pieces(self, data: bytes, piece: int) -> Iterator[bytes]:
        pending: bytes | None = data
        while True:
            try:
                if pending is not None:
                    out = self._d.decompress(pending, piece)
                    pending = None
                elif not self._d.needs_input and not self._d.eof:
                    out = self._d.decompress(b"", piece)
                else:
                    break
            except zstd.ZstdError as exc:
                raise SourceError(f"layer is not valid zstd: {exc}") from exc
            if out:
                yield out
            if self._d.eof:
                rest = self._d.unused_data
                if not rest:
                    break
                self._d = zstd.ZstdDecompressor()
                pending = rest

    def finish(self) -> None:
        if not self._d.eof:
            raise SourceError("layer zstd stream is truncated")


class Decompressor:
    """Feed compressed bytes, get bounded pieces of the layer's tar stream."""

    def __init__(self, limits: DecompressionLimits | None = None) -> None:
        self.limits = limits or DecompressionLimits()
        self.compression: Compression | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._head = b""
        self._codec: _Codec | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.bytes_in += len(data)
        if self._codec is None:
            self._head += data
            if len(self._head) < _MAGIC_LEN:
                return
            data, self._head = self._head, b""
            self._start(data)
        assert self._codec is not None
        yield from self._bounded(self._codec.pieces(data, self.limits.piece_size))

    def finish(self) -> Iterator[bytes]:
        """Flush what a too-short stream left buffered, then check the stream ended properly."""
        if self._codec is None:
            head, self._head = self._head, b""
            self._start(head)
            assert self._codec is not None
            yield from self._bounded(self._codec.pieces(head, self.limits.piece_size))
        self._codec.finish()

    def _start(self, head: bytes) -> None:
        self.compression = sniff(head)
        codecs: dict[Compression, type[_Gzip | _Zstd | _Plain]] = {
            "gzip": _Gzip,
            "zstd": _Zstd,
            "none": _Plain,
        }
        self._codec = codecs[self.compression]()

    def _bounded(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        limits = self.limits
        for out in pieces:
            self.bytes_out += len(out)
            if self.bytes_out > limits.max_output:
                raise ScanLimitExceeded("max_layer_bytes", limits.max_output, "decompressed layer")
            if self.bytes_out > limits.ratio_grace and self.bytes_out > limits.max_ratio * max(
                self.bytes_in, 1
            ):
                raise ScanLimitExceeded(
                    "max_compression_ratio",
                    limits.max_ratio,
                    f"{self.bytes_out} bytes out of {self.bytes_in} compressed: a decompression bomb",
                )
            yield out
