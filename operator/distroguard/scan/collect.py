"""Streaming collectors: turn a file's data, piece by piece, into the bounded bytes a capture rule keeps."""

from __future__ import annotations

import re
from typing import Protocol

from distroguard.errors import ScanLimitExceeded


class Collector(Protocol):
    def add(self, chunk: memoryview) -> None: ...
    def result(self) -> bytes | None: ...


class KeepCollector:
    """The whole file, refusing one larger than the bound."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self._path = path
        self._max = max_bytes
        self._buf = bytearray()

    def add(self, chunk: memoryview) -> None:
        if len(self._buf) + len(chunk) > self._max:
            raise ScanLimitExceeded("max_file_bytes", self._max, f"{self._path} is larger")
        self._buf += chunk

    def result(self) -> bytes:
        return bytes(self._buf)


class SearchCollector:
    """The first match of a pattern anywhere in the file, found with a window that spans chunk borders."""

    def __init__(self, pattern: re.Pattern[bytes], max_match: int) -> None:
        self._pattern = pattern
        self._overlap = max_match
        self._tail = b""
        self._found: bytes | None = None

    def add(self, chunk: memoryview) -> None:
        if self._found is not None:
            return
        window = self._tail + bytes(chunk)
        match = self._pattern.search(window)
        if match:
            self._found = match.group(0)
            self._tail = b""
        else:
            self._tail = window[-self._overlap :]

    def result(self) -> bytes | None:
        return self._found


class StanzaCollector:
    """The stanzas (blank-line separated records) whose `key` line names one of `names`.

    Package databases (dpkg status, apk installed) run to megabytes; only a few stanzas matter, so the
    rest is dropped as it streams past. A stanza longer than `max_stanza` is dropped whole.
    """

    def __init__(self, key: bytes, names: frozenset[bytes], max_stanza: int) -> None:
        self._key = key
        self._names = names
        self._max = max_stanza
        self._line = bytearray()
        self._stanza: list[bytes] = []
        self._size = 0
        self._oversized = False
        self._kept: list[bytes] = []

    def add(self, chunk: memoryview) -> None:
        data = bytes(chunk)
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._grow(data[start:])
                return
            self._grow(data[start:nl])
            self._end_line()
            start = nl + 1

    def _grow(self, piece: bytes) -> None:
        if self._oversized:
            return
        self._size += len(piece)
        if self._size > self._max:
            self._oversized = True
            self._line.clear()
            self._stanza.clear()
            return
        self._line += piece

    def _end_line(self) -> None:
        line = bytes(self._line).rstrip(b"\r")
        self._line.clear()
        if line.strip():
            if not self._oversized:
                self._stanza.append(line)
            return
        self._end_stanza()

    def _end_stanza(self) -> None:
        if not self._oversized and self._stanza:
            for line in self._stanza:
                if line.startswith(self._key):
                    if line[len(self._key) :].strip() in self._names:
                        self._kept.append(b"\n".join(self._stanza))
                    break
        self._stanza.clear()
        self._size = 0
        self._oversized = False

    def result(self) -> bytes:
        if self._line:
            self._end_line()
        self._end_stanza()
        return b"\n\n".join(self._kept) + (b"\n" if self._kept else b"")
