"""Berkeley DB hash files, as rpm's `Packages` (RHEL/CentOS 5-8, Amazon Linux 2) is one: the header blobs.

The layout, from Berkeley DB's page format (db_page.h) and rpm's use of it:

- page 0 is the hash meta page: magic 0x061561 at byte 12 (in the byte order of the machine that wrote it,
  which is how the order is found), page size at 20, page type 8 at 25, last page number at 32;
- every page starts with a 26-byte header: its number (8), next page (16), item count (20), high free
  offset (22, on an overflow page the bytes it holds), page type (25);
- a hash page (type 13, or 2 in old files) holds an array of 2-byte item offsets after the header, items
  alternating key and value; a value is kept inline (`H_KEYDATA`, type byte 1, up to the previous item)
  or, when large (every real header), on a chain of overflow pages (`H_OFFPAGE`, type byte 3: page number
  at 4, total length at 8);
- an overflow page (type 7) holds its part of the value after the header, and the next page of the chain.

Keys are rpm's package numbers; the value under key 0 is rpm's own counter, not a header, and is skipped
with any other value too short to be one. Chains are followed with a visited set and a budget of page
visits, so a loop or a chain that points everywhere ends with an error instead of running forever.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from distroguard.scan.rpm.errors import RpmDatabaseError

HASH_MAGIC = 0x061561
PAGE_HEADER_BYTES = 26
_VALID_PAGE_SIZES = frozenset(512 << shift for shift in range(8))  # 512 ... 64 KiB
_P_HASH_UNSORTED = 2
_P_OVERFLOW = 7
_P_HASHMETA = 8
_P_HASH = 13
_H_KEYDATA = 1
_H_OFFPAGE = 3
MIN_HEADER_BYTES = 16
"""Shorter values are not package headers (rpm's counter under key 0 is 4 bytes)."""
VISITS_PER_PAGE = 4
"""Page reads allowed per page of the file: real files read each page about once."""


def is_bdb_hash(data: bytes | bytearray) -> bool:
    return len(data) >= 36 and HASH_MAGIC in (
        int.from_bytes(data[12:16], "little"),
        int.from_bytes(data[12:16], "big"),
    )


def header_blobs(data: bytes | bytearray) -> Iterator[bytes]:
    """Every value long enough to be a header, in page order; `RpmDatabaseError` for a broken file."""
    reader = _Reader(data)
    for number in range(1, reader.last_page + 1):
        kind = reader.page_type(number)
        if kind not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        for value in reader.values(number):
            if len(value) >= MIN_HEADER_BYTES:
                yield value


class _Reader:
    def __init__(self, data: bytes | bytearray) -> None:
        if not is_bdb_hash(data):
            raise RpmDatabaseError("not a Berkeley DB hash file (no hash magic in its meta page)")
        order = "<" if int.from_bytes(data[12:16], "little") == HASH_MAGIC else ">"
        self._u16 = struct.Struct(order + "H")
        self._u32 = struct.Struct(order + "I")
        self._data = memoryview(data)
        self.page_size = self._u32.unpack_from(data, 20)[0]
        if self.page_size not in _VALID_PAGE_SIZES:
            raise RpmDatabaseError(f"the meta page gives a page size of {self.page_size}")
        if data[24] != 0:
            raise RpmDatabaseError("the database is encrypted")
        if data[25] != _P_HASHMETA:
            raise RpmDatabaseError(f"page 0 has type {data[25]}, not a hash meta page")
        pages = len(data) // self.page_size
        self.last_page = self._u32.unpack_from(data, 32)[0]
        if self.last_page >= pages:
            raise RpmDatabaseError(
                f"the meta page names page {self.last_page} as the last, but the file has {pages} pages "
                "(truncated)"
            )
        self._visits_left = VISITS_PER_PAGE * (self.last_page + 1)

    def _page(self, number: int) -> memoryview:
        if not 0 < number <= self.last_page:
            raise RpmDatabaseError(f"a page pointer names page {number}, outside 1-{self.last_page}")
        self._visits_left -= 1
        if self._visits_left < 0:
            raise RpmDatabaseError(
                "too many page reads for the file's size (an overflow chain loops or fans out)"
            )
        start = number * self.page_size
        return self._data[start : start + self.page_size]

    def page_type(self, number: int) -> int:
        return int(self._data[number * self.page_size + 25])

    def values(self, number: int) -> Iterator[bytes]:
        page = self._page(number)
        entries = self._u16.unpack_from(page, 20)[0]
        if PAGE_HEADER_BYTES + 2 * entries > self.page_size:
            raise RpmDatabaseError(f"page {number} claims {entries} items, more than fit")
        offsets = [self._u16.unpack_from(page, PAGE_HEADER_BYTES + 2 * i)[0] for i in range(entries)]
        for index in range(1, entries, 2):  # keys at even indexes, values at odd ones
            start = offsets[index]
            end = offsets[index - 1]
            if not PAGE_HEADER_BYTES + 2 * entries <= start < end <= self.page_size:
                raise RpmDatabaseError(f"page {number}'s item {index} lies outside the page")
            kind = page[start]
            if kind == _H_KEYDATA:
                yield bytes(page[start + 1 : end])
            elif kind == _H_OFFPAGE:
                if end - start < 12:
                    raise RpmDatabaseError(f"page {number}'s item {index} is a short overflow reference")
                first = self._u32.unpack_from(page, start + 4)[0]
                total = self._u32.unpack_from(page, start + 8)[0]
                yield self._chain(first, total)

    def _chain(self, first: int, total: int) -> bytes:
        if total > len(self._data):
            raise RpmDatabaseError(f"an overflow value claims {total} bytes, more than the file's")
        parts = bytearray()
        seen: set[int] = set()
        number = first
        while number != 0:
            if number in seen:
                raise RpmDatabaseError(f"the overflow chain from page {first} loops at page {number}")
            seen.add(number)
            page = self._page(number)
            if page[25] != _P_OVERFLOW:
                raise RpmDatabaseError(
                    f"the overflow chain from page {first} reaches page {number} of type {page[25]}"
                )
            length = self._u16.unpack_from(page, 22)[0]
            if PAGE_HEADER_BYTES + length > self.page_size:
                raise RpmDatabaseError(f"overflow page {number} claims {length} bytes, more than fit")
            parts += page[PAGE_HEADER_BYTES : PAGE_HEADER_BYTES + length]
            if len(parts) > total:
                raise RpmDatabaseError(
                    f"the overflow chain from page {first} holds more than its {total} bytes"
                )
            number = self._u32.unpack_from(page, 16)[0]
        if len(parts) != total:
            raise RpmDatabaseError(
                f"the overflow chain from page {first} holds {len(parts)} of {total} bytes"
            )
        return bytes(parts)
