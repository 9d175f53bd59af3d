"""TLS contexts that read the system's CA bundle when they first make a connection, not when they are made.

aiohttp builds two TLS client contexts when it is imported, and each parses the whole CA bundle (about
25 ms apiece on a small machine). A command that talks only to plain-HTTP registries (a loopback one in CI)
never uses them, and one that talks TLS uses one of them: under `deferred_ca()`, a context's CA loading
(`load_default_certs`, `set_default_verify_paths`) is put off until the context first wraps a connection
(`wrap_bio`, as asyncio does, or `wrap_socket`). Verification is unchanged: the same bundle, from the same
places (SSL_CERT_FILE, SSL_CERT_DIR, the system's paths), is loaded before the first handshake.

Only the CLI uses this, around a command's import: a long-running process pays the import once. Until its
first connection, such a context's `get_ca_certs()` and `cert_store_stats()` show the bundle unread.
"""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Where a context keeps the loading it owes (in its instance dict: `ssl.SSLContext` has one).
_OWED = "_distroguard_owed_ca"
_WRAPPERS = ("wrap_bio", "wrap_socket")
_LOADERS = ("load_default_certs", "set_default_verify_paths")
_patching = threading.Lock()


def owes_ca(context: ssl.SSLContext) -> bool:
    """Whether `context` put off CA loading and has not done it yet."""
    return _OWED in vars(context)


def settle(context: ssl.SSLContext) -> None:
    """Do the CA loading `context` put off, once; nothing for a context that owes none."""
    owed: list[Callable[[], None]] | None = vars(context).pop(_OWED, None)
    if owed is None:
        return
    for name in _WRAPPERS:
        vars(context).pop(name, None)
    for load in owed:
        load()


def _settled(context: ssl.SSLContext, name: str, *args: Any, **kwargs: Any) -> Any:
    settle(context)
    return getattr(context, name)(*args, **kwargs)


def _owe(context: ssl.SSLContext, load: Callable[[], None]) -> None:
    state = vars(context)
    if _OWED not in state:
        state[_OWED] = []
        # Instance attributes shadow the class's methods: the first wrap settles, then they are removed.
        for name in _WRAPPERS:
            state[name] = functools.partial(_settled, context, name)
    state[_OWED].append(load)


@contextmanager
def deferred_ca() -> Iterator[None]:
    """While inside, any `ssl.SSLContext` asked to load CA certificates owes it until its first
    connection. Meant around an import; other threads' contexts made meanwhile are deferred alike, which
    is safe (they too load before their first handshake)."""
    with _patching:
        cls = ssl.SSLContext
        own = {name: cls.__dict__[name] for name in _LOADERS if name in cls.__dict__}
        load_default_certs = cls.load_default_certs
        set_default_verify_paths = cls.set_default_verify_paths

        def deferred_load_default_certs(
            self: ssl.SSLContext, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH
        ) -> None:
            _owe(self, lambda: load_default_certs(self, purpose))

        def deferred_set_default_verify_paths(self: ssl.SSLContext) -> None:
            _owe(self, lambda: set_default_verify_paths(self))

        cls.load_default_certs = deferred_load_default_certs  # type: ignore[method-assign]
        cls.set_default_verify_paths = deferred_set_default_verify_paths  # type: ignore[method-assign]
        try:
            yield
        finally:
            # As it was: `set_default_verify_paths` is inherited from the C base, not the class's own.
            for name in _LOADERS:
                if name in own:
                    setattr(cls, name, own[name])
                else:
                    delattr(cls, name)
