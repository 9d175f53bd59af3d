"""Where the EOL catalog lives: the snapshot bundled in the package, and the local cache `eol
update` writes.

The cache is used when it is valid and not older than the bundled snapshot; otherwise the bundled
snapshot is, with a warning saying why. The cache is replaced atomically (temporary file + rename in
the same directory), so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from distroguard.eol.catalog import EolCatalog
from distroguard.eol.fileformat import dumps, loads
from distroguard.errors import CatalogError
from distroguard.model.lifecycle import CatalogSnapshot

CACHE_ENV = "DISTROGUARD_EOL_CACHE"
BUNDLED_NAME = "data/eol.json"


@dataclass(frozen=True, slots=True)
class LoadedCatalog:
    catalog: EolCatalog
    origin: Literal["bundled", "cache"]
    location: str
    warnings: tuple[str, ...] = ()


def default_cache_path() -> Path:
    """`$DISTROGUARD_EOL_CACHE`, else `$XDG_CACHE_HOME/distroguard/eol.json` (`~/.cache/...`)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distroguard" / "eol.json"


@lru_cache(maxsize=1)
def bundled_snapshot() -> CatalogSnapshot:
    resource = resources.files("distroguard").joinpath(BUNDLED_NAME)
    try:
        text = resource.read_bytes()
    except OSError as exc:
        raise CatalogError(
            f"the bundled EOL catalog {BUNDLED_NAME} is missing from the package: {exc}"
        ) from exc
    return loads(text, f"bundled {BUNDLED_NAME}")


def read_cache(path: Path) -> CatalogSnapshot | None:
    """The cached snapshot; None when there is no cache file; `CatalogError` when it is
    unreadable."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CatalogError(f"cannot read the EOL cache {path}: {exc}") from exc
    return loads(text, f"EOL cache {path}")


def load_catalog(cache: Path | None) -> LoadedCatalog:
    bundled = bundled_snapshot()
    fallback = f"package {BUNDLED_NAME}"
    if cache is None:
        return LoadedCatalog(EolCatalog(bundled), "bundled", fallback)
    try:
        cached = read_cache(cache)
    except CatalogError as exc:
        return LoadedCatalog(
            EolCatalog(bundled), "bundled", fallback, (f"{exc}; using the bundled snapshot",)
        )
    if cached is None:
        return LoadedCatalog(EolCatalog(bundled), "bundled", fallback)
    if cached.snapshot < bundled.snapshot:
        warning = (
            f"the EOL cache {cache} ({cached.snapshot}) is older than the bundled snapshot "
            f"({bundled.snapshot}); using the bundled snapshot"
        )
        return LoadedCatalog(EolCatalog(bundled), "bundled", fallback, (warning,))
    return LoadedCatalog(EolCatalog(cached), "cache", str(cache))


def write_cache(path: Path, snapshot: CatalogSnapshot) -> None:
    """Replace the cache file atomically; on any failure the previous file is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(dumps(snapshot))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
