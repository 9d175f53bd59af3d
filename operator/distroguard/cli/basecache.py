"""The CLI's memory of base images across runs: which chain of layers is which image.

`inspect`, `check` and `audit` learn a chain key for every image they resolve (`resolver.bases`); kept in a
file, an image resolved today names as its base an image resolved last week. The file is
`$DISTROGUARD_BASES_CACHE`, else `$XDG_CACHE_HOME/distroguard/bases.json` (`~/.cache/...`): bounded (the
newest `KNOWN_LIMIT` chains), replaced atomically, and a file that cannot be read is started afresh with a
warning, never an error of the command.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import click

from distroguard.resolver.bases import KNOWN_LIMIT, KnownBases

CACHE_ENV = "DISTROGUARD_BASES_CACHE"
FORMAT = 1
_KEY = re.compile(r"^[0-9a-f]{64}$")


def cache_path() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distroguard" / "bases.json"


def load_bases(path: Path | None = None) -> KnownBases:
    """The chains the file keeps (none when there is no file, or it is not one of ours)."""
    path = path or cache_path()
    bases = KnownBases()
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, not {FORMAT}")
        for key, reference, digest in document["chains"][-KNOWN_LIMIT:]:
            if isinstance(key, str) and _KEY.match(key) and isinstance(reference, str):
                bases.learn_key(key, reference, digest if isinstance(digest, str) else None)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        click.echo(
            f"warning: the base-image cache {path} is unreadable ({exc}); starting it afresh", err=True
        )
        return KnownBases()
    return bases


def save_bases(bases: KnownBases, path: Path | None = None) -> None:
    """Replace the file atomically, unless it already holds the same chains in the same order; a cache that
    cannot be written costs a warning, never the command."""
    path = path or cache_path()
    document = {"format": FORMAT, "chains": bases.entries()[-KNOWN_LIMIT:]}
    text = json.dumps(document, separators=(",", ":"))
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass  # no file yet, or one to replace
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        click.echo(f"warning: the base-image cache {path} was not written: {exc}", err=True)
