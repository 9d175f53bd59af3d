"""Text a registry controls, made fit for what people read.

Whoever chooses an image reference chooses the registry, and so every header, body, redirect target,
challenge and error message distroguard reads. Messages that others read (denials, warnings, reports,
Events, metrics, `inspect` and `check`) must not repeat that text: they name only what we recognise
(status codes, digests, the OCI and Docker media types, the OCI error codes) and call anything else an
"unexpected value", with its length. The raw text may go to the debug log, cut at `DEBUG_CHARS`.
"""

from __future__ import annotations

import logging
from collections.abc import Container

logger = logging.getLogger("distroguard.registry.foreign")

DEBUG_CHARS = 200
"""Characters of a foreign value the debug log keeps."""


def unexpected(value: object) -> str:
    """What a message says in place of a value we do not recognise: its kind and size, never its text."""
    if isinstance(value, str | bytes):
        return f"unexpected value ({len(value)} characters)"
    if value is None:
        return "no value"
    if isinstance(value, bool | int | float):
        return f"unexpected {type(value).__name__}"
    if isinstance(value, dict):
        return "unexpected object"
    if isinstance(value, list):
        return "unexpected list"
    return "unexpected value"


def known(value: object, recognised: Container[str]) -> str:
    """`value` itself when it is one of `recognised`, else `unexpected(value)`."""
    if isinstance(value, str) and value in recognised:
        return value
    return unexpected(value)


def debug(what: str, value: object) -> None:
    """Log a foreign value at debug level, cut, for whoever debugs the registry (never at info or above)."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s: %r", what, str(value)[:DEBUG_CHARS])
