"""Waiting for what the API server and the operator do asynchronously (watches, caches, audits)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def eventually(check: Callable[[], Any], *, timeout: float = 60.0, what: str) -> Any:
    """Poll until `check` returns something true, and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.3)
