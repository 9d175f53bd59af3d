"""Where each admission's (and audit's) outcome is reported: the seam for Prometheus metrics.

`operator.metrics.Metrics` (admission latency by verdict, requests by verdict and policy...) fits this
protocol; without it, answers are simply not counted. (What reads the resolvers' caches is
`distroguard.resolver.routing.CacheTracker`, which it fits too.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from distroguard.model import Decision


class AdmissionObserver(Protocol):
    def observe_admission(
        self,
        verdict: str,
        seconds: float,
        decision: Decision | None,
        unresolved: Mapping[str, int],
    ) -> None:
        """`unresolved`: images answered without facts, by their error's `reason`."""


class AuditObserver(Protocol):
    def observe_audit(
        self,
        seconds: float,
        images: Mapping[tuple[str, str, str, str], int],
        violations: Mapping[tuple[str, str, str], int],
        workloads: Mapping[str, int],
        eol_workloads: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """One completed audit: images by (os, version, libc, EOL state); workloads with a result other
        than pass by (policy, rule, result); workloads by verdict; workloads on an end-of-life release by
        (os, version)."""


class NoObserver:
    def observe_admission(
        self,
        verdict: str,
        seconds: float,
        decision: Decision | None,
        unresolved: Mapping[str, int],
    ) -> None:
        return None

    def observe_audit(
        self,
        seconds: float,
        images: Mapping[tuple[str, str, str, str], int],
        violations: Mapping[tuple[str, str, str], int],
        workloads: Mapping[str, int],
        eol_workloads: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        return None
