"""Content digests (`algorithm:hex`): validation, computation and verification, whole or streamed.

Only sha256 and sha512 are accepted: they are the two the OCI image spec registers, and a digest we
cannot recompute is a digest we cannot trust.
"""

from __future__ import annotations

import hashlib
import re

from distroguard.errors import DigestMismatch, SourceError
from distroguard.registry.foreign import unexpected

#: Hex length of each supported algorithm's digest.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]+)$")


def is_digest(text: str) -> bool:
    """Whether `text` is a well-formed digest of a supported algorithm (a tag never is: tags have no
    `:`).
    """
    match = _DIGEST.match(text)
    return match is not None and len(match.group(2)) == ALGORITHMS[match.group(1)]


def check_digest(text: object, what: str) -> str:
    """Return `text` if it is a valid supported digest; raise SourceError naming `what`
    otherwise.
    """
    if not isinstance(text, str):
        raise SourceError(f"{what}: digest must be a string, got {type(text).__name__}")
    if not is_digest(text):
        raise SourceError(
            f"{what}: invalid digest, {unexpected(text)} (expected sha256:<64 hex> or sha512:<128 hex>)"
        )
    return text


def digest_of(body: bytes, algorithm: str = "sha256") -> str:
    """The digest of `body` with `algorithm` (sha256 unless told)."""
    if algorithm not in ALGORITHMS:
        raise SourceError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def verify_digest(body: bytes, expected: str, what: str) -> None:
    """Raise DigestMismatch when `body` does not hash to `expected` (with `expected`'s
    algorithm).
    """
    algorithm = check_digest(expected, what).partition(":")[0]
    actual = digest_of(body, algorithm)
    if actual != expected:
        raise DigestMismatch(what, expected, actual)


class DigestVerifier:
    """Hashes bytes as they stream past, then checks them against the expected digest and size.

    Used wherever bytes arrive in pieces (registry streams, local files), so that nothing has to be
    held in memory to be verified.
    """

    __slots__ = ("_hash", "algorithm", "expected", "expected_size", "seen", "what")

    def __init__(self, expected: str, what: str, expected_size: int | None = None) -> None:
        self.expected = check_digest(expected, what)
        self.algorithm = expected.partition(":")[0]
        self.what = what
        self.expected_size = expected_size
        self.seen = 0
        self._hash = hashlib.new(self.algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self.seen += len(data)
        self._hash.update(data)

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"

    def verify(self) -> None:
        """Raise DigestMismatch (or SourceError for a wrong size) unless everything seen matches."""
        if self.expected_size is not None and self.seen != self.expected_size:
            raise SourceError(f"{self.what}: got {self.seen} bytes, the descriptor says {self.expected_size}")
        actual = self.digest
        if actual != self.expected:
            raise DigestMismatch(self.what, self.expected, actual)
