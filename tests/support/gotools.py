"""The Go tools some tests run (promtool, Kyverno, Gatekeeper's gator), built in the background.

`scripts/test` builds them while the rest of the suite runs (`scripts/testenv tools`, whose cold build is
the largest part of a cold run), holding an exclusive lock on `go-tools.lock` in the test cache until the
build ends. A test that needs one of them waits here for that lock, then finds the binary or fails naming
the build command and its log. The tests that need them run last (`go_tools` marker, `tests/conftest.py`),
so the build has the whole suite's time.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

from support import kube

LOCK_NAME = "go-tools.lock"
LOG_NAME = "go-tools.log"
WAIT_SECONDS = 75 * 60.0
"""Longest wait for a background build (a cold one on a loaded 2-core machine took most of an hour)."""


def lock_path() -> Path:
    return kube.cache_root() / LOCK_NAME


def log_path() -> Path:
    return kube.cache_root() / LOG_NAME


def wait_for_background_build(timeout: float = WAIT_SECONDS) -> None:
    """Return once no background build holds the lock (at once when none runs)."""
    path = lock_path()
    if not path.exists():
        return
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the Go tools' background build still runs after {timeout:.0f} s (log: {log_path()})"
                    ) from None
                time.sleep(2.0)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return


def missing_hint() -> str:
    """What to say after a binary was not found: the log of the background build, when there is one."""
    log = log_path()
    return f" (the background build's log: {log})" if log.exists() else ""
