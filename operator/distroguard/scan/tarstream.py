"""A push-style tar reader: feed bytes in any chunking, get entry headers and their data.

It reads ustar, pax (`x`/`g` records: path, linkpath, size) and GNU long names (`L`/`K`), the formats image
builders write. Data of entries nobody wants is skipped without copying. Headers are checksummed, sizes and
metadata records are bounded, so a corrupt or hostile archive ends in a clear error, never a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from distroguard.errors import ScanLimitExceeded, SourceError

BLOCK = 512

EntryKind = Literal["file", "dir", "symlink", "hardlink", "other"]
_KINDS: dict[bytes, EntryKind] = {
    b"0": "file",
    b"\x00": "file",
    b"7": "file",
    b"1": "hardlink",
    b"2": "symlink",
    b"5": "dir",
}
_META_TYPES = {b"x", b"g", b"L", b"K"}
# Links, directories, devices and fifos carry no data whatever their size field says (as tar readers agree).
_NO_DATA_TYPES = {b"1", b"2", b"3", b"4", b"5", b"6"}


@dataclass(frozen=True, slots=True)
class TarEntry:
    path: str
    kind: EntryKind
    size: int
    linkname: str = ""


class TarHandler(Protocol):
    def on_entry(self, entry: TarEntry) -> bool:
        """A new entry begins; return True to receive its data."""

    def on_data(self, chunk: memoryview) -> None:
        """A piece of the current entry's data (only when `on_entry` returned True)."""

    def on_entry_end(self) -> None:
        """The current entry's data is complete (only when `on_entry` returned True)."""


def _number(field: bytes) -> int:
    """An octal (or GNU base-256) numeric header field."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    text = field.split(b"\x00", 1)[0].strip(b" \x00")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise SourceError(f"corrupt tar header: numeric field {bytes(field)!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes) -> dict[str, str]:
    """Parse `<len> <key>=<value>\\n` records."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise SourceError("corrupt pax header record") from None
        if length <= 0 or pos + length > len(data):
            raise SourceError("corrupt pax header record length")
        key, sep, value = data[space + 1 : pos + length - 1].partition(b"=")
        if sep:
            records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


@dataclass(frozen=True, slots=True)
class TarLimits:
    max_entries: int = 100_000
    """Entries allowed in one layer (a million-entry archive is a denial-of-service attempt)."""
    max_meta_bytes: int = 1024 * 1024
    """Size of one pax or GNU long-name record."""


class TarReader:
    """Feed the (decompressed) tar stream with `feed`; call `close` at its end."""

    _HEADER, _DATA, _PAD, _META, _END = range(5)

    def __init__(self, handler: TarHandler, limits: TarLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or TarLimits()
        self.entries = 0
        self.ended = False
        self._state = self._HEADER
        self._header = bytearray()
        self._remaining = 0
        self._size = 0
        self._wanted = False
        self._meta = bytearray()
        self._meta_type = b""
        self._pax: dict[str, str] = {}
        self._global_pax: dict[str, str] = {}
        self._long_name: str | None = None
        self._long_link: str | None = None

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            state = self._state
            if state == self._HEADER:
                if not self._header and end - pos >= BLOCK:  # the common case: no copy
                    pos += BLOCK
                    self._on_header(bytes(view[pos - BLOCK : pos]))
                    continue
                take = min(BLOCK - len(self._header), end - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    block, self._header = bytes(self._header), bytearray()
                    self._on_header(block)
            elif state == self._DATA:
                take = min(self._remaining, end - pos)
                if self._wanted:
                    self.handler.on_data(view[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._end_data()
            elif state == self._PAD:
                take = min(self._remaining, end - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._HEADER
            elif state == self._META:
                take = min(self._remaining, end - pos)
                self._meta += view[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._end_meta()
            else:  # _END: whatever follows the end-of-archive marker is padding
                return

    def close(self) -> None:
        """The stream is over: it must not stop inside an entry."""
        if self._state in (self._DATA, self._META) or (
            self._state == self._HEADER and self._header and not self.ended
        ):
            raise SourceError("layer tar stream is truncated inside an entry")

    def _on_header(self, block: bytes) -> None:
        if block[257:262] != b"ustar":
            # Summing 512 bytes is the costliest step per entry, so only pre-POSIX headers (no magic to
            # recognise them by) and the end-of-archive marker get it.
            if not block.strip(b"\x00"):
                self.ended = True
                self._state = self._END
                return
            stored = _number(block[148:156])
            actual = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
            if stored != actual:
                raise SourceError("corrupt tar header: checksum mismatch")
        typeflag = block[156:157]
        size = _number(block[124:136])
        if typeflag in _META_TYPES:
            if size > self.limits.max_meta_bytes or size < 0:
                raise ScanLimitExceeded(
                    "max_tar_meta_bytes", self.limits.max_meta_bytes, "pax or long-name record"
                )
            self._meta_type = typeflag
            self._size = self._remaining = size
            self._meta = bytearray()
            self._state = self._META if size else self._HEADER
            if not size:
                self._end_meta()
            return
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ScanLimitExceeded("max_tar_entries", self.limits.max_entries, "entries in one layer")
        name = _text(block[0:100])
        if block[345] and block[257:262] == b"ustar":
            name = f"{_text(block[345:500])}/{name}"
        linkname = _text(block[157:257]) if block[157] else ""
        if self._long_name is not None:
            name, self._long_name = self._long_name, None
        if self._long_link is not None:
            linkname, self._long_link = self._long_link, None
        if self._pax or self._global_pax:
            pax = {**self._global_pax, **self._pax}
            self._pax = {}
            name = pax.get("path", name)
            linkname = pax.get("linkpath", linkname)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise SourceError("corrupt pax size record") from None
        if size < 0:
            raise SourceError("corrupt tar header: negative size")
        kind = _KINDS.get(typeflag, "other")
        if typeflag in _NO_DATA_TYPES:
            size = 0
        entry = TarEntry(name, kind, size, linkname)
        self._wanted = self.handler.on_entry(entry)
        self._size = self._remaining = size
        if size:
            self._state = self._DATA
        else:
            self._end_data()

    def _end_data(self) -> None:
        if self._wanted:
            self.handler.on_entry_end()
            self._wanted = False
        self._pad()

    def _pad(self) -> None:
        self._remaining = -self._size % BLOCK
        self._state = self._PAD if self._remaining else self._HEADER

    def _end_meta(self) -> None:
        data = bytes(self._meta)
        self._meta = bytearray()
        kind = self._meta_type
        if kind == b"x":
            self._pax = _parse_pax(data)
        elif kind == b"g":
            self._global_pax = _parse_pax(data)
        elif kind == b"L":
            self._long_name = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
        else:
            self._long_link = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
        self._pad()
