"""One rpm header blob, as every database backend stores it: the header without its 8-byte magic.

    int32 il, int32 dl              (big-endian: index entries, data bytes)
    il x {int32 tag, uint32 type, int32 offset, uint32 count}
    dl bytes of data

Only the identity tags are read (name, epoch, version, release, arch). Every offset is checked against the
data store, and the counts against rpm's own limits, so a hostile blob costs at most one pass over its index.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from distroguard.scan.rpm.errors import RpmDatabaseError

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
_TYPE_INT32 = 4
_TYPE_STRING = 6
_WANTED = frozenset({TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH})

MAX_INDEX_ENTRIES = 0xFFFF
"""rpm refuses headers with more tags than this (hdrchkTags)."""
MAX_DATA_BYTES = 0x0FFFFFFF
"""rpm refuses headers with a larger data store (hdrchkData)."""
MAX_STRING_BYTES = 4096
"""A name, version, release or arch is short; a longer one is not read as one."""

_PREFIX = struct.Struct(">ii")
_ENTRY = struct.Struct(">iIiI")


@dataclass(frozen=True, slots=True)
class RpmPackage:
    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None

    @property
    def evr(self) -> str:
        """`[epoch:]version-release`, as rpm prints it."""
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{epoch}{self.version}-{self.release}"


def parse_header(blob: bytes | memoryview) -> RpmPackage:
    """The package a header blob describes; `RpmDatabaseError` saying what is wrong with it."""
    view = memoryview(blob)
    if len(view) < _PREFIX.size:
        raise RpmDatabaseError(f"a header of {len(view)} bytes is shorter than its 8-byte prefix")
    count, data_length = _PREFIX.unpack_from(view, 0)
    if not 0 < count <= MAX_INDEX_ENTRIES:
        raise RpmDatabaseError(f"a header claims {count} index entries (rpm allows 1-{MAX_INDEX_ENTRIES})")
    if not 0 <= data_length <= MAX_DATA_BYTES:
        raise RpmDatabaseError(f"a header claims {data_length} data bytes")
    store_start = _PREFIX.size + count * _ENTRY.size
    if store_start + data_length > len(view):
        raise RpmDatabaseError(
            f"a header claims {count} entries and {data_length} data bytes, more than its {len(view)} bytes"
        )
    store = view[store_start : store_start + data_length]
    found: dict[int, str | int] = {}
    for index in range(count):
        tag, kind, offset, items = _ENTRY.unpack_from(view, _PREFIX.size + index * _ENTRY.size)
        if tag not in _WANTED or tag in found:
            continue
        if not 0 <= offset < data_length:
            raise RpmDatabaseError(
                f"tag {tag} points at offset {offset}, outside the {data_length}-byte data"
            )
        if kind == _TYPE_STRING:
            found[tag] = _string(store, offset, tag)
        elif kind == _TYPE_INT32 and items >= 1:
            if offset + 4 > data_length:
                raise RpmDatabaseError(f"tag {tag}'s number runs past the data")
            found[tag] = int.from_bytes(store[offset : offset + 4], "big")
    name, version, release = found.get(TAG_NAME), found.get(TAG_VERSION), found.get(TAG_RELEASE)
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(release, str)):
        raise RpmDatabaseError("a header lacks its name, version or release")
    epoch = found.get(TAG_EPOCH)
    arch = found.get(TAG_ARCH)
    return RpmPackage(
        name=name,
        version=version,
        release=release,
        epoch=epoch if isinstance(epoch, int) else None,
        arch=arch if isinstance(arch, str) else None,
    )


def _string(store: memoryview, offset: int, tag: int) -> str:
    window = bytes(store[offset : offset + MAX_STRING_BYTES + 1])
    end = window.find(b"\x00")
    if end < 0:
        raise RpmDatabaseError(f"tag {tag}'s string is not terminated within {MAX_STRING_BYTES} bytes")
    text = window[:end].decode("utf-8", errors="replace")
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise RpmDatabaseError(f"tag {tag} holds {text[:40]!r}, not a package field")
    return text
