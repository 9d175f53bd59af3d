"""Real Go programs for the tests, built here by the machine's Go toolchain: their build information is
what every Go binary since 1.18 embeds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def build_go_program(workdir: Path, name: str = "hello") -> tuple[bytes, str]:
    """A static program `name`, built in `workdir`: (its bytes, the toolchain's version without `go`)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("`go` is not on PATH: the Go runtime tests build a real binary")
    (workdir / "go.mod").write_text(f"module example.com/{name}\n\ngo 1.21\n")
    (workdir / "main.go").write_text('package main\n\nfunc main() { println("hello") }\n')
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    build = [go, "build", "-trimpath", "-o", name, "."]
    subprocess.run(build, cwd=workdir, env=env, check=True, timeout=300)
    version = subprocess.run([go, "env", "GOVERSION"], env=env, capture_output=True, text=True, check=True)
    return (workdir / name).read_bytes(), version.stdout.strip().removeprefix("go")
