"""Where the tests find promtool (Prometheus's rule checker), built by `scripts/testenv build`.

promtool is built from the Go module in tools/promtool into `<test-environment cache>/promtool/<version>/`,
next to the control plane; a stamp beside it holds the digest of the build's inputs, so that a changed
go.mod or toolchain rebuilds it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support import gotools, kube

VERSION = "v0.316.0"
"""github.com/prometheus/prometheus in tools/promtool/go.mod (checked by the build)."""
PROMETHEUS_RELEASE = "3.16.0"
"""The Prometheus release of that module version (what `promtool --version` reports)."""
MODULE_DIR = kube.REPO_ROOT / "tools" / "promtool"
TARGET = "github.com/prometheus/prometheus/cmd/promtool"


class PromtoolMissing(RuntimeError):
    pass


def build_dir() -> Path:
    return kube.cache_root() / "promtool" / VERSION


def binary() -> Path:
    """The built promtool; raises PromtoolMissing (naming the command that builds it) when absent."""
    gotools.wait_for_background_build()
    path = build_dir() / "promtool"
    if not os.access(path, os.X_OK):
        raise PromtoolMissing(
            f"{path} is missing: run `scripts/testenv tools` (builds promtool {VERSION})"
            + gotools.missing_hint()
        )
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS...`, its output captured (never raises on a non-zero exit)."""
    return subprocess.run(
        [str(binary()), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
