"""Counting the bytes one lookup reads from its source (manifests, configs and blobs alike)."""

from __future__ import annotations


class ByteMeter:
    """A running total of bytes read; pass one to every call that belongs to the same lookup."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n

    def __repr__(self) -> str:
        return f"ByteMeter(total={self.total})"
