"""Layer decompression: format sniffing, bounded pieces, bombs and truncation."""

from __future__ import annotations

import gzip
import os

import pytest

from distroguard.errors import ScanLimitExceeded, SourceError
from distroguard.scan.decompress import DecompressionLimits, Decompressor, sniff, zstd

PAYLOAD = os.urandom(300_000) + b"tail"


def run(data: bytes, limits: DecompressionLimits | None = None, chunk: int = 4096) -> bytes:
    d = Decompressor(limits)
    out = bytearray()
    for i in range(0, len(data), chunk):
        for piece in d.feed(data[i : i + chunk]):
            assert len(piece) <= d.limits.piece_size
            out += piece
    for piece in d.finish():
        out += piece
    return bytes(out)


ENCODERS = {"gzip": gzip.compress, "zstd": zstd.compress, "none": bytes}


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("chunk", [1, 3, 4096, 1 << 20])
def test_round_trip(name: str, chunk: int) -> None:
    payload = PAYLOAD[:20_000] if chunk < 10 else PAYLOAD  # byte-by-byte feeding is slow
    data = ENCODERS[name](payload)
    assert sniff(data[:4]) == name
    assert run(data, chunk=chunk) == payload


def test_concatenated_gzip_members() -> None:
    assert run(gzip.compress(b"a" * 10) + gzip.compress(b"b" * 10)) == b"a" * 10 + b"b" * 10


def test_concatenated_zstd_frames() -> None:
    assert run(zstd.compress(b"a" * 10) + zstd.compress(b"b" * 10)) == b"a" * 10 + b"b" * 10


def test_tiny_input_shorter_than_magic() -> None:
    assert run(b"ab") == b"ab"


@pytest.mark.parametrize("encode", [gzip.compress, zstd.compress])
def test_bomb_stops_on_ratio(encode: object) -> None:
    bomb = encode(bytes(256 * 1024 * 1024))  # type: ignore[operator]
    limits = DecompressionLimits(ratio_grace=8 * 1024 * 1024)
    d = Decompressor(limits)
    out = 0

    def drain() -> None:
        nonlocal out
        for i in range(0, len(bomb), 65536):
            for piece in d.feed(bomb[i : i + 65536]):
                out += len(piece)

    with pytest.raises(ScanLimitExceeded, match="max_compression_ratio"):
        drain()
    assert out <= limits.ratio_grace + limits.piece_size


def test_total_output_is_bounded() -> None:
    limits = DecompressionLimits(max_output=100_000)
    with pytest.raises(ScanLimitExceeded, match="max_layer_bytes=100000"):
        run(gzip.compress(PAYLOAD), limits)


@pytest.mark.parametrize("encode", [gzip.compress, zstd.compress])
def test_truncated_stream_is_an_error(encode: object) -> None:
    data = encode(PAYLOAD)  # type: ignore[operator]
    with pytest.raises(SourceError, match="truncated"):
        run(data[: len(data) // 2])


def test_corrupt_gzip_is_an_error() -> None:
    data = bytearray(gzip.compress(PAYLOAD))
    data[20:40] = b"\xff" * 20
    with pytest.raises(SourceError, match="not valid gzip"):
        run(bytes(data))
