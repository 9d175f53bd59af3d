"""Streaming collectors: turn a file's data, piece by piece, into the bounded bytes a capture rule keeps."""

from __future__ import annotations

import re
from typing import Protocol

from distroguard.errors import ScanLimitExceeded
from distroguard.scan.capture import MAX_PATTERN_STANZAS, Keep, RpmDatabase, Search, Stanzas
from distroguard.scan.rpm.packages import RpmSummary, summarize


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
    """The first match of a pattern anywhere in the file, found with a window that spans chunk borders.

    A match that reaches the end of the data seen so far may still grow (`\\d+` cut after "2.3" of
    "2.36"), so it is only taken once more data follows it, or the file ends.
    """

    def __init__(self, pattern: re.Pattern[bytes], max_match: int, max_scan: int | None = None) -> None:
        self._pattern = pattern
        self._overlap = max_match
        self._tail = b""
        self._found: bytes | None = None
        self._left = max_scan

    def add(self, chunk: memoryview) -> None:
        if self._found is not None:
            return
        if self._left is not None:
            if self._left <= 0:
                return
            chunk = chunk[: self._left]
            self._left -= len(chunk)
        window = self._tail + bytes(chunk)
        match = self._pattern.search(window)
        if match is None:
            self._tail = window[-self._overlap :]
        elif match.end() < len(window):
            self._found = match.group(0)
            self._tail = b""
        else:
            self._tail = window[match.start() :][-self._overlap :]

    def result(self) -> bytes | None:
        if self._found is None and self._tail:
            match = self._pattern.search(self._tail)
            self._found = match.group(0) if match else None
            self._tail = b""
        return self._found


class StanzaCollector:
    """The stanzas (blank-line separated records) whose `key` line names one of `names`.

    Package databases (dpkg status, apk installed) run to megabytes; only a few stanzas matter, so the
    rest is dropped as it streams past. A stanza longer than `max_stanza` is dropped whole, unless it is
    one of the wanted ones: then the scan stops, since "no libc package" would be a wrong answer. Only
    the first stanza of each name is kept, so a hostile database cannot grow what is kept.
    """

    def __init__(
        self,
        path: str,
        key: bytes,
        names: frozenset[bytes],
        max_stanza: int,
        pattern: re.Pattern[bytes] | None = None,
    ) -> None:
        self._path = path
        self._key = key
        self._names = names
        self._pattern = pattern
        self._by_pattern = 0
        self._max = max_stanza
        self._line = bytearray()
        self._stanza: list[bytes] = []
        self._size = 0
        self._oversized = False
        self._wanted_oversized = False
        self._kept: dict[bytes, bytes] = {}

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
            self._wanted_oversized = self._name([*self._stanza, bytes(self._line)]) is not None
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
            elif not self._wanted_oversized:
                self._wanted_oversized = self._name([line]) is not None
            return
        self._end_stanza()

    def _name(self, lines: list[bytes]) -> bytes | None:
        """The stanza's name when it is a wanted one."""
        for line in lines:
            if line.startswith(self._key):
                name = line[len(self._key) :].strip()
                if name in self._names:
                    return name
                wanted = self._pattern is not None and self._pattern.fullmatch(name) is not None
                return name if wanted else None
        return None

    def _end_stanza(self) -> None:
        if self._wanted_oversized:
            raise ScanLimitExceeded("max_stanza_bytes", self._max, f"a wanted record in {self._path}")
        if not self._oversized and self._stanza:
            name = self._name(self._stanza)
            if name is not None and name not in self._kept and self._room(name):
                self._kept[name] = b"\n".join(self._stanza)
        self._stanza.clear()
        self._size = 0
        self._oversized = False

    def _room(self, name: bytes) -> bool:
        """A stanza named in `names` is always kept; those matched by the pattern, up to a bound."""
        if name in self._names:
            return True
        self._by_pattern += 1
        return self._by_pattern <= MAX_PATTERN_STANZAS

    def result(self) -> bytes:
        if self._line:
            self._end_line()
        self._end_stanza()
        kept = list(self._kept.values())
        return b"\n\n".join(kept) + (b"\n" if kept else b"")


class RpmDatabaseCollector:
    """An rpm database, read whole (bounded) and kept as its summary. A larger one is not an error of the
    scan: the summary says so, and the C library is then told by the files, as without a database."""

    def __init__(self, max_bytes: int, declared_size: int = 0) -> None:
        self._max = max_bytes
        self._buf = bytearray()
        # The tar header's size says at once when the bound will be passed: then nothing is buffered.
        self._size = declared_size if declared_size > max_bytes else 0

    def add(self, chunk: memoryview) -> None:
        self._size += len(chunk)
        if self._size > self._max:
            self._buf = bytearray()
            return
        self._buf += chunk

    def result(self) -> bytes:
        if self._size > self._max:
            error = f"the database is larger than {self._max} bytes: not read"
            return RpmSummary(format="unknown", error=error).dumps()
        data, self._buf = self._buf, bytearray()
        return summarize(data).dumps()


def collector_for(path: str, rule: Keep | Search | Stanzas | RpmDatabase, size: int = 0) -> Collector:
    """The collector that stores what `rule` keeps of the file at `path` (`size`: as its tar header says)."""
    if isinstance(rule, Keep):
        return KeepCollector(path, rule.max_bytes)
    if isinstance(rule, RpmDatabase):
        return RpmDatabaseCollector(rule.max_bytes, size)
    if isinstance(rule, Search):
        return SearchCollector(rule.pattern, rule.max_match, rule.max_scan)
    return StanzaCollector(path, rule.key, rule.names, rule.max_stanza, rule.pattern)
