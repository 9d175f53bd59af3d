"""Registry authentication, the pure parts: `WWW-Authenticate` challenges, token responses, a token
cache.

The flow itself (ask, get 401 with a challenge, fetch a token, ask again once) lives in `authflow`,
which does the I/O; everything here is plain functions and data, tested without a network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from distroguard.errors import SourceError

#: Lifetime assumed for a token whose response gives none (the distribution token spec's default).
DEFAULT_TOKEN_LIFETIME = 60.0
#: Tokens kept at most; the oldest go first (one per registry and repository scope).
MAX_CACHED_TOKENS = 1024
#: Largest token response read (JWTs with many scopes reach a few KB).
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header: a scheme (lowercased) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The challenge's `scope`, split: several scopes are separated by spaces."""
        return tuple(self.params.get("scope", "").split())


_SEPARATORS = " \t,="


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more `WWW-Authenticate` header values into challenges, in order.

    Follows RFC 7235 (comma-separated challenges, `name=value` or `name="quoted \\"value\\""`
    parameters, token68) and tolerates what registries actually send: unquoted URLs, spaces around
    `=`, mixed-case scheme and parameter names, empty list elements. Never raises: garbage yields
    fewer challenges.
    """
    text = values if isinstance(values, str) else ", ".join(values)
    return _Parser(text).challenges()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SEPARATORS:
            if self.text[self.pos] == '"':
                break
            self.pos += 1
        return self.text[start : self.pos]

    def _quoted(self) -> str:
        self.pos += 1  # the opening quote
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def _value(self) -> str:
        self._skip(" \t")
        if self._peek() == '"':
            return self._quoted()
        start = self.pos
        # Unquoted values end at a comma or blank; they may contain `=` and `:` (URLs, base64).
        while self.pos < len(self.text) and self.text[self.pos] not in " \t,":
            self.pos += 1
        return self.text[start : self.pos]

    def challenges(self) -> list[Challenge]:
        found: list[Challenge] = []
        current: Challenge | None = None
        while True:
            self._skip(" \t,")
            if self.pos >= len(self.text):
                return found
            if self._peek() == '"':  # a stray quoted string: skip all of it
                self._quoted()
                continue
            before = self.pos
            word = self._token()
            if not word:  # a stray `=`: skip it and go on
                self.pos = before + 1
                continue
            after_word = self.pos
            self._skip(" \t")
            if self._peek() == "=" and current is not None:
                equals = self.pos
                self._skip("=")
                rest = self.pos
                self._skip(" \t")
                if self._peek() in (",", "") and not current.params and current.token68 is None:
                    # `Scheme abc==` : a token68 right after the scheme.
                    token68 = self.text[before:rest].strip()
                    found[-1] = current = Challenge(current.scheme, {}, token68)
                    continue
                self.pos = equals + 1
                current.params[word.lower()] = self._value()
                continue
            if self._peek() == "=":  # a parameter before any scheme: not a challenge
                self.pos += 1
                self._value()
                continue
            self.pos = after_word
            current = Challenge(word.lower())
            found.append(current)


def parse_token_response(body: bytes, what: str) -> tuple[str, float]:
    """(token, lifetime in seconds) from a token endpoint's JSON answer (`token` or
    `access_token`).
    """
    try:
        data = json.loads(body)
    except ValueError:
        raise SourceError(f"{what}: the token response is not valid JSON") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what}: the token response is not a JSON object")
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceError(f"{what}: the token response has no token")
    lifetime = data.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, float(lifetime)


class TokenCache:
    """Bearer tokens by (registry, scope), each kept until its lifetime minus a safety margin.

    The margin (capped at half the lifetime, so short-lived tokens are still reused) keeps a token
    from expiring between the moment it is picked and the moment the registry checks it.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        margin: float = 10.0,
        max_entries: int = MAX_CACHED_TOKENS,
    ) -> None:
        self._clock = clock
        self._margin = margin
        self._max = max_entries
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, registry: str, scope: str) -> str | None:
        entry = self._tokens.get((registry, scope))
        if entry is None:
            return None
        token, expires = entry
        if self._clock() >= expires:
            del self._tokens[(registry, scope)]
            return None
        return token

    def put(self, registry: str, scope: str, token: str, lifetime: float) -> None:
        now = self._clock()
        keep = lifetime - min(self._margin, lifetime / 2)
        key = (registry, scope)
        self._tokens.pop(key, None)
        self._tokens[key] = (token, now + keep)
        if len(self._tokens) > self._max:
            for stale in [k for k, (_, exp) in self._tokens.items() if exp <= now]:
                del self._tokens[stale]
            while len(self._tokens) > self._max:
                del self._tokens[next(iter(self._tokens))]

    def drop(self, registry: str, scope: str) -> None:
        self._tokens.pop((registry, scope), None)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:  # never show tokens
        return f"TokenCache(entries={len(self._tokens)})"
