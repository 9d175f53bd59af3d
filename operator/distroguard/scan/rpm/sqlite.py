"""`rpmdb.sqlite` (rpm >= 4.16): the `Packages` table's header blobs, read with the standard library's sqlite3
from an in-memory copy of the bytes (never a file on disk).

A database file is an attacker's program as much as data: its schema could make `Packages` a view over a
recursive query. So `Packages` must be a table, the connection is read-only and does not trust the schema,
every value is capped in length, and a progress handler stops any statement after a fixed number of
virtual-machine steps.
"""

from __future__ import annotations

from collections.abc import Iterator

from distroguard.scan.rpm.errors import RpmDatabaseError

MAGIC = b"SQLite format 3\x00"
MAX_VALUE_BYTES = 16 * 1024 * 1024
"""The longest header blob read (rpm's own bound on a header's data is far above real ones)."""
MAX_STEPS = 50_000_000
"""Virtual-machine steps allowed for the whole read, ~thousands per row: ample for real databases."""
_STEPS_PER_CHECK = 10_000


def is_sqlite(data: bytes | bytearray) -> bool:
    return data[:16] == MAGIC


def header_blobs(data: bytes | bytearray) -> Iterator[bytes]:
    """The blobs; a `bytearray` is changed in place (bytes 18-19), `bytes` are copied first."""
    if not is_sqlite(data):
        raise RpmDatabaseError("not an SQLite database")
    if len(data) >= 20 and data[18] == 2 and data[19] == 2:
        # rpm writes in WAL mode; an in-memory database cannot use a WAL, so the bytes given to sqlite say
        # "rollback journal" (the content is the same; the image's -wal file is not read).
        data = data if isinstance(data, bytearray) else bytearray(data)
        data[18] = data[19] = 1
    import sqlite3  # only an image with an rpm database pays for it: most scans never read one

    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    steps = 0

    def budget() -> int:
        nonlocal steps
        steps += _STEPS_PER_CHECK
        return 1 if steps > MAX_STEPS else 0

    try:
        try:
            connection.deserialize(data)
            connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
            connection.set_progress_handler(budget, _STEPS_PER_CHECK)
            connection.execute("PRAGMA trusted_schema = OFF")
            connection.execute("PRAGMA query_only = ON")
            found = connection.execute(
                "SELECT type FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE"
            ).fetchall()
            if found != [("table",)]:
                raise RpmDatabaseError("the SQLite database has no Packages table")
            cursor = connection.execute("SELECT blob FROM Packages")
            for (blob,) in cursor:
                if isinstance(blob, bytes):
                    yield blob
        except sqlite3.Error as exc:
            if steps > MAX_STEPS:
                raise RpmDatabaseError(
                    f"reading the SQLite database took more than {MAX_STEPS} steps"
                ) from None
            raise RpmDatabaseError(f"the SQLite database cannot be read: {exc}") from None
    finally:
        connection.close()
