"""rpm's own database format, `Packages.db` (the `ndb` backend; SUSE), as rpm's rpmpkg.c writes it.

All numbers little-endian:

- a 32-byte header: magic `RpmP`, format version 0, generation, the number of 4 KiB slot pages;
- the slot pages, from byte 0 (the header takes the first two 16-byte slots): slots of
  {magic `Slot`, package index (0: free), block offset, block count}, blocks being 16 bytes;
- at each used slot's block: a 16-byte blob header {magic `BlbS`, package index, checksum, length}, then
  the header blob itself.

Every offset and length is checked against the bytes given; the slot pages are bounded by the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from distroguard.scan.rpm.errors import RpmDatabaseError

HEADER_MAGIC = b"RpmP"
_SLOT_MAGIC = b"Slot"
_BLOB_MAGIC = b"BlbS"
_SLOT_PAGE_BYTES = 4096
_SLOT = struct.Struct("<4sIII")
_BLOB = struct.Struct("<4sIII")
_BLOCK_BYTES = 16


def is_ndb(data: bytes | bytearray) -> bool:
    return data[:4] == HEADER_MAGIC


def header_blobs(data: bytes | bytearray) -> Iterator[bytes]:
    if len(data) < 32 or not is_ndb(data):
        raise RpmDatabaseError("not an rpm ndb database (no RpmP magic)")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise RpmDatabaseError(f"ndb format version {version} is not known (0 is)")
    if slot_pages == 0 or slot_pages * _SLOT_PAGE_BYTES > len(data):
        raise RpmDatabaseError(
            f"the header claims {slot_pages} slot pages, which the file's {len(data)} bytes do not hold"
        )
    view = memoryview(data)
    for offset in range(2 * _SLOT.size, slot_pages * _SLOT_PAGE_BYTES, _SLOT.size):
        magic, package, block, _blocks = _SLOT.unpack_from(view, offset)
        if magic != _SLOT_MAGIC:
            raise RpmDatabaseError(f"the slot at byte {offset} has no Slot magic")
        if package == 0:
            continue
        start = block * _BLOCK_BYTES
        if start + _BLOB.size > len(data):
            raise RpmDatabaseError(f"package {package}'s blob starts past the end of the file")
        blob_magic, blob_package, _checksum, length = _BLOB.unpack_from(view, start)
        if blob_magic != _BLOB_MAGIC or blob_package != package:
            raise RpmDatabaseError(f"package {package}'s slot points at no blob of its own")
        end = start + _BLOB.size + length
        if end > len(data):
            raise RpmDatabaseError(
                f"package {package}'s blob of {length} bytes runs past the end of the file"
            )
        yield bytes(view[start + _BLOB.size : end])
