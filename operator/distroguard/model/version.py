"""Tolerant version numbers, as distributions and runtimes write them.

`VERSION_ID` values and runtime versions are not semver: `3.19.1`, `22.04`, `2023`, `15.2.1`,
`v25.06`, `jdk-17.0.9+9`, `8u392-b08`, `3.19_alpha20230901`, `1.4-rolling-202307070317`. Everything
here compares the leading dotted run of numbers and ignores the rest, which is what cycle matching
and version bounds need.
"""

from __future__ import annotations

import re
from functools import lru_cache

_LEADING_NUMBERS = re.compile(r"^\D*?(\d+(?:\.\d+)*)")
# Development snapshots (Alpine edge, release candidates) have no support lifecycle of their own.
_PRERELEASE = re.compile(r"(?i)(?:_alpha|_beta|_rc|_pre|\d(?:a|b|rc)\d|-rc\d|\bedge\b|-dev\b)")


@lru_cache(maxsize=4096)
def version_parts(text: str) -> tuple[int, ...]:
    """The leading dotted numeric components: `3.19.1` -> (3, 19, 1), `jdk-17.0.9+9` -> (17, 0, 9).

    Returns () when the text holds no number at all (`edge`, `rolling`, `sid`).
    """
    found = _LEADING_NUMBERS.match(text.strip())
    if found is None:
        return ()
    return tuple(int(part) for part in found.group(1).split("."))


def is_prerelease(text: str) -> bool:
    """Whether a version names a development snapshot (`3.22.0_alpha20250108`, `3.13.0rc1`,
    `edge`)."""
    return _PRERELEASE.search(text) is not None


def _padded(parts: tuple[int, ...], width: int) -> tuple[int, ...]:
    return parts + (0,) * (width - len(parts))


@lru_cache(maxsize=4096)
def at_least(version: str, minimum: str) -> bool:
    """`version >= minimum`, missing components counting as 0 (`3.19.1 >= 3.19`, `12 >= 12.0`)."""
    have, want = version_parts(version), version_parts(minimum)
    width = max(len(have), len(want))
    return _padded(have, width) >= _padded(want, width)


def at_most(version: str, maximum: str) -> bool:
    """`version <= maximum` at the precision of `maximum`: `3.19.5` is within a maximum of
    `3.19`."""
    have, limit = version_parts(version), version_parts(maximum)
    return _padded(have, len(limit))[: len(limit)] <= limit


def same_release(version: str, release: str) -> bool:
    """Whether `version` belongs to `release` (`22.04.3` to `22.04`, `12.5` to `12`, but not `3.1`
    to `3.12`)."""
    have, want = version_parts(version), version_parts(release)
    return bool(want) and have[: len(want)] == want
