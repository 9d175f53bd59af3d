"""Warning Events on violating workloads, rate-limited.

An Event is what `kubectl describe` and `kubectl get events` show beside the workload. Limits, so that a
cluster full of violations never floods the API server:
- the same message on the same workload at most once per `interval` (a new violation is told at once);
- at most `per_audit` Events per audit (the rest wait for a later audit; reports still say everything).

Blocking calls: `post` runs in a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes
from cachetools import TTLCache

from distroguard.audit.results import WorkloadResult

logger = logging.getLogger(__name__)

REASON = "DistroPolicyViolation"
COMPONENT = "distroguard"
MAX_MESSAGE = 1024


@dataclass(frozen=True, slots=True)
class Notice:
    namespace: str
    kind: str
    name: str
    uid: str
    api_version: str
    message: str


def notice_of(result: WorkloadResult) -> Notice | None:
    """The Event a workload deserves: one line per violation (fail or warn), or None."""
    lines = [
        f"{f.policy}/{f.rule} ({f.action}): {f.message}"
        for f in result.decision.findings
        if f.severity in ("high", "medium") and f.exception is None  # excepted: the report says skip
    ]
    if not lines:
        return None
    workload = result.workload
    text = f"{len(lines)} violation(s): " + " | ".join(lines)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    ref = workload.ref
    return Notice(ref.namespace, ref.kind, ref.name, workload.uid, workload.api_version, text)


class EventRecorder:
    def __init__(self, api: Any, *, interval: float, per_audit: int) -> None:
        self._core: Any = kubernetes.client.CoreV1Api(api)  # a dict is sent as is
        self._told: TTLCache[tuple[str, str, str, str], bool] = TTLCache(maxsize=100_000, ttl=interval)
        self.per_audit = per_audit

    def post(self, notices: Sequence[Notice]) -> int:
        """Post what was not told within the interval, up to `per_audit`; returns how many were posted."""
        posted = 0
        for notice in notices:
            if posted >= self.per_audit:
                break
            key = (
                notice.namespace,
                notice.kind,
                notice.name,
                hashlib.sha256(notice.message.encode()).hexdigest(),
            )
            if key in self._told:
                continue
            try:
                self._core.create_namespaced_event(notice.namespace, self._event(notice))
            except kubernetes.client.ApiException as exc:
                logger.warning(
                    "cannot post an event on %s %s/%s: %s",
                    notice.kind,
                    notice.namespace,
                    notice.name,
                    exc.reason,
                )
                continue
            self._told[key] = True
            posted += 1
        return posted

    @staticmethod
    def _event(notice: Notice) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        suffix = f"{time.time_ns():x}"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{notice.name[:200]}.{suffix}", "namespace": notice.namespace},
            "involvedObject": {
                "apiVersion": notice.api_version,
                "kind": notice.kind,
                "name": notice.name,
                "namespace": notice.namespace,
                **({"uid": notice.uid} if notice.uid else {}),
            },
            "reason": REASON,
            "message": notice.message,
            "type": "Warning",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
