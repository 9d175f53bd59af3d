"""The tests that run the Go tools wait for `scripts/test`'s background build: its lock, held by another
process, holds them back until it is released, and no lock at all lets them through at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import gotools

HOLD = """
import fcntl, sys, time
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTROGUARD_TESTENV_CACHE", str(tmp_path))
    assert gotools.lock_path().parent == tmp_path
    return tmp_path


def test_no_build_no_wait(cache: Path) -> None:
    gotools.wait_for_background_build(timeout=0.0)


def test_a_build_in_progress_holds_the_test_back_until_it_ends(cache: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(gotools.lock_path()), "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TimeoutError, match="still runs"):
            gotools.wait_for_background_build(timeout=0.5)
        gotools.wait_for_background_build(timeout=60.0)
        # Let through once the holder let go of the lock, which it does by ending.
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
