"""Language runtimes an image carries: from the config's Env first, from cheap file names second.

Official language images announce their runtime in Env (`PYTHON_VERSION=3.12.4`,
`NODE_VERSION=...`), which costs no layer bytes and is what the image's builder installed. Files are
the fallback, and only where a name alone says the version: `python3.12` in a bin directory.
Node.js, Java and the others keep their version inside the binary or a file tree, too costly for the
fast path, so they count only when Env names them. When both exist, Env wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from distroguard.model import Evidence, Runtime
from distroguard.scan.capture import BIN_DIRS, PYTHON_BINARY
from distroguard.scan.tree import RootView

# Env variable -> runtime name, as the official images set them; the first of a name wins.
_ENV_RUNTIMES = (
    ("PYTHON_VERSION", "python"),
    ("NODE_VERSION", "nodejs"),
    ("JAVA_VERSION", "java"),
    ("GOLANG_VERSION", "go"),
    ("GO_VERSION", "go"),
    ("RUBY_VERSION", "ruby"),
    ("PHP_VERSION", "php"),
    ("RUST_VERSION", "rust"),
    ("DOTNET_VERSION", "dotnet"),
    ("OTP_VERSION", "erlang"),
    ("ELIXIR_VERSION", "elixir"),
)
_VERSION = re.compile(r"\d[0-9A-Za-z.+~_-]*")
# Java: "jdk-21.0.5+11" and "21.0.5+11" are 21.0.5; Java 8 writes "jdk8u422-b05" / "8u422", which
# is 8.0.422 in the numbering every later release uses.
_JAVA_8 = re.compile(r"(?:jdk-?)?(\d+)u(\d+)")
_JAVA = re.compile(r"(?:jdk-?)?(\d+(?:\.\d+)*)")


def detect_runtimes(env: Sequence[str], view: RootView | None) -> tuple[list[Runtime], list[Evidence]]:
    """Runtimes and their evidence, one per name, sorted by name; Env over files."""
    found: dict[str, tuple[Runtime, Evidence]] = {}
    for name, item in _from_env(env).items():
        found[name] = item
    if view is not None:
        for name, item in _from_files(view).items():
            found.setdefault(name, item)
    ordered = sorted(found.values(), key=lambda item: item[0].name)
    return [runtime for runtime, _ in ordered], [evidence for _, evidence in ordered]


def _from_env(env: Sequence[str]) -> dict[str, tuple[Runtime, Evidence]]:
    values: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            values[key] = value  # a later definition wins, as when the image runs
    result: dict[str, tuple[Runtime, Evidence]] = {}
    for key, name in _ENV_RUNTIMES:
        if name in result or key not in values:
            continue
        version = _normalise(name, values[key])
        if version is None:
            continue
        evidence = Evidence(
            fact=f"runtime.{name}",
            source="config",
            path=f"Env:{key}",
            detail=f"{key}={values[key]}",
        )
        result[name] = (Runtime(name=name, version=version), evidence)
    return result


def _normalise(name: str, raw: str) -> str | None:
    """The version a policy compares, or None for a value that is not one ("", "latest")."""
    value = raw.strip().removeprefix("v")
    if name == "java":
        java_8 = _JAVA_8.match(value)
        if java_8:
            return f"{java_8.group(1)}.0.{java_8.group(2)}"
        java = _JAVA.match(value)
        return java.group(1) if java else None
    return value if _VERSION.fullmatch(value) else None


def _from_files(view: RootView) -> dict[str, tuple[Runtime, Evidence]]:
    # The first bin directory in PATH order that holds a pythonX.Y decides; within it, the newest.
    for directory in BIN_DIRS:
        versions: list[tuple[tuple[int, int], str]] = []
        for name in view.listdir(directory):
            match = PYTHON_BINARY.fullmatch(name)
            if match and view.exists(f"{directory}/{name}"):
                versions.append(((int(match.group("major")), int(match.group("minor"))), name))
        if versions:
            (major, minor), name = max(versions)
            evidence = Evidence(
                fact="runtime.python",
                source="file",
                path=f"{directory}/{name}",
                detail=f"{name} in {directory}",
            )
            return {"python": (Runtime(name="python", version=f"{major}.{minor}"), evidence)}
    return {}
