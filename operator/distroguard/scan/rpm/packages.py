"""An rpm database's bytes -> the summary the scan keeps: the packages that decide the C library and the
runtimes, how many headers there were, and what could not be read.

The format is told by the file's magic, not its name (images move the database between /var/lib/rpm and
/usr/lib/sysimage/rpm). The summary is a small JSON document, so that the squashed tree keeps a few hundred
bytes per database instead of megabytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from distroguard.scan.rpm import bdb, ndb, sqlite
from distroguard.scan.rpm.errors import RpmDatabaseError
from distroguard.scan.rpm.header import RpmPackage, parse_header

WANTED = re.compile(
    r"glibc"
    r"|python(?:3(?:\.\d+)?|3\d+)?(?:-libs)?"
    r"|nodejs(?:\d+)?"
    r"|java-[\d.]+-openjdk(?:-headless)?"
    r"|ruby(?:-libs)?"
    r"|golang"
    r"|php(?:\d+)?(?:-cli)?"
    r"|(?:dotnet|aspnetcore)-runtime-[\d.]+"
)
"""Package names whose entries are kept: the C library, and the runtimes a policy may judge."""
MAX_HEADERS = 100_000
"""More headers than any real system has installed packages; a database claiming more is refused."""
MAX_KEPT = 64
"""Wanted packages kept (a system has a handful of runtimes; more is noise or an attack)."""
MAX_UNREADABLE_NOTES = 3


@dataclass(slots=True)
class RpmSummary:
    format: str
    headers: int = 0
    unreadable: int = 0
    packages: list[RpmPackage] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def find(self, name: str) -> RpmPackage | None:
        return next((package for package in self.packages if package.name == name), None)

    @property
    def complete(self) -> bool:
        """Every header was read: an absent package is really absent."""
        return self.error is None and self.unreadable == 0

    def dumps(self) -> bytes:
        document = {
            "format": self.format,
            "headers": self.headers,
            "unreadable": self.unreadable,
            "error": self.error,
            "notes": self.notes,
            "packages": [[p.name, p.epoch, p.version, p.release, p.arch] for p in self.packages],
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, data: bytes) -> RpmSummary:
        document = json.loads(data)
        return cls(
            format=document["format"],
            headers=document["headers"],
            unreadable=document["unreadable"],
            error=document["error"],
            notes=list(document["notes"]),
            packages=[
                RpmPackage(name=n, epoch=e, version=v, release=r, arch=a)
                for n, e, v, r, a in document["packages"]
            ],
        )


def database_format(
    data: bytes | bytearray,
) -> tuple[str, Callable[[bytes | bytearray], Iterator[bytes]]] | None:
    if sqlite.is_sqlite(data):
        return "sqlite", sqlite.header_blobs
    if ndb.is_ndb(data):
        return "ndb", ndb.header_blobs
    if bdb.is_bdb_hash(data):
        return "bdb", bdb.header_blobs
    return None


def summarize(data: bytes | bytearray) -> RpmSummary:
    """What the database at hand says about the wanted packages; never raises for a bad database: the
    summary's `error` says what was wrong, and what was read before it counts. A `bytearray` may be changed
    (it is the caller's to drop)."""
    known = database_format(data)
    if known is None:
        return RpmSummary(
            format="unknown", error="not an rpm database in any known format (sqlite, bdb, ndb)"
        )
    summary = RpmSummary(format=known[0])
    try:
        for blob in known[1](data):
            summary.headers += 1
            if summary.headers > MAX_HEADERS:
                raise RpmDatabaseError(f"more than {MAX_HEADERS} package headers")
            try:
                package = parse_header(blob)
            except RpmDatabaseError as exc:
                summary.unreadable += 1
                if len(summary.notes) < MAX_UNREADABLE_NOTES:
                    summary.notes.append(str(exc))
                continue
            if WANTED.fullmatch(package.name) and len(summary.packages) < MAX_KEPT:
                summary.packages.append(package)
    except RpmDatabaseError as exc:
        summary.error = str(exc)
    return summary
