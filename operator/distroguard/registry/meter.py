"""Counting bytes: the bytes one lookup reads (ByteMeter), and everything a client sent and received
(RegistryStats, read by the metrics).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class ByteMeter:
    """A running total of bytes read; pass one to every call that belongs to the same lookup."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n

    def __repr__(self) -> str:
        return f"ByteMeter(total={self.total})"


WELL_KNOWN_REGISTRIES = frozenset(
    {
        "docker.io",
        "ghcr.io",
        "quay.io",
        "gcr.io",
        "registry.k8s.io",
        "public.ecr.aws",
        "mcr.microsoft.com",
        "registry.gitlab.com",
        "nvcr.io",
    }
)
"""Registries counted under their own name in every cluster; with those the operator configured, the
fixed set of `registry` label values (anything else is `OTHER`)."""
OTHER = "other"


@dataclass(slots=True)
class RegistryStats:
    """Client-wide totals since the client was made; only ever grow. Several clients may share one."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """HTTP requests sent (each retry and redirect hop is one), by (registry, status class): "2xx" to
    "5xx", or "error" when no answer came (connection refused or dropped, timed out, TLS failed).
    """
    received: Counter[str] = field(default_factory=Counter)
    """Body bytes read, by registry: manifests, blobs (as they stream) and tokens. Error bodies and a
    manifest or token body abandoned half-read (too large, connection dropped) are not counted.
    """

    known: frozenset[str] | None = None
    """The registries counted under their own name; any other under `OTHER` (None: every one, as the CLI
    does). Whoever writes an image reference chooses its registry: a metric label per name would let them
    grow the metrics without bound, and print their text in them."""

    def label(self, registry: str) -> str:
        return registry if self.known is None or registry in self.known else OTHER

    def count_request(self, registry: str, status: int | None) -> None:
        """One request to `registry`; `status` None when it got no answer."""
        self.requests[self.label(registry), "error" if status is None else f"{status // 100}xx"] += 1

    def count_bytes(self, registry: str, n: int) -> None:
        self.received[self.label(registry)] += n
