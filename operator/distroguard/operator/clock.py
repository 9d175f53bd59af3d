"""What time it is for the operator's decisions: the system clock, or (`--dev-clock FILE`, development and
the end-to-end tests only) a moment written in a file.

Support dates, exception expiries and the other dates a decision depends on are compared with this clock's
answer. A test that must see a date pass under a running process writes the new moment into the file; the
next review or audit reads it, with no restart and no sleeping. The file is read again only when it changed
(its modification time and size), so that a review pays for one `stat`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from distroguard.errors import DistroguardError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class FileClock:
    """The moment written in `path` (ISO 8601; a naive one is UTC). A missing or malformed file is an error
    naming the file: a development clock that silently fell back to the real time would hide the test's
    intent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._moment = datetime.min.replace(tzinfo=UTC)
        self()  # fails now, at start, rather than at the first review

    def __call__(self) -> datetime:
        try:
            status = os.stat(self.path)
        except OSError as exc:
            raise DistroguardError(f"the development clock file {self.path} cannot be read: {exc}") from None
        seen = (status.st_mtime_ns, status.st_size)
        if seen != self._seen:
            self._moment = _parse(self.path)
            self._seen = seen
        return self._moment


def _parse(path: Path) -> datetime:
    text = path.read_text(encoding="utf-8").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DistroguardError(
            f"the development clock file {path} holds {text[:40]!r}, not an ISO 8601 moment "
            "such as 2027-03-31T12:00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def write_moment(path: Path, moment: datetime) -> None:
    """Set a `FileClock`'s moment (tests): written whole, then renamed, so a reader never sees half."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(moment.isoformat(), encoding="utf-8")
    os.replace(temporary, path)
