"""The development clock: the moment written in a file, re-read when the file changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from distroguard.errors import DistroguardError
from distroguard.operator.clock import FileClock, write_moment
from distroguard.operator.settings import RunSettings


def test_the_clock_answers_the_moment_in_the_file_and_follows_a_change(tmp_path: Path) -> None:
    path = tmp_path / "now"
    write_moment(path, datetime(2026, 7, 10, 23, 0, tzinfo=UTC))
    clock = FileClock(path)
    assert clock() == datetime(2026, 7, 10, 23, 0, tzinfo=UTC)
    write_moment(path, datetime(2027, 3, 31, 12, 30, 5, tzinfo=UTC))
    assert clock() == datetime(2027, 3, 31, 12, 30, 5, tzinfo=UTC)


def test_a_naive_moment_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "now"
    path.write_text("2026-07-12T08:00:00\n")
    assert FileClock(path)() == datetime(2026, 7, 12, 8, 0, tzinfo=UTC)


def test_a_missing_or_malformed_file_is_refused_at_start_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DistroguardError, match=r"clock file .*missing.* cannot be read"):
        FileClock(tmp_path / "missing")
    path = tmp_path / "junk"
    path.write_text("next tuesday")
    with pytest.raises(DistroguardError, match="'next tuesday', not an ISO 8601 moment"):
        FileClock(path)


def test_the_file_clock_needs_dev(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--dev-clock is for development only"):
        RunSettings(dev_clock=tmp_path / "now", cert_file=tmp_path / "c", key_file=tmp_path / "k")
    assert RunSettings(dev=True, dev_clock=tmp_path / "now").dev_clock == tmp_path / "now"
