"""A Warning Event on each DistroPolicyException that has expired, once.

Once per exception and end: the Event's name is derived from the exception's uid and `expires`, so that a
second create (a later audit, a restarted audit process) is refused with a conflict and nothing is posted
twice while the API server keeps the Event (its event TTL); an exception whose end is moved gets a new one.
The audit is the one writer of Events.

Blocking calls: `post` runs in a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import kubernetes

from distroguard.model.api import API_VERSION, EXCEPTION_KIND
from distroguard.model.exception import DistroPolicyException
from distroguard.operator.audit.events import COMPONENT

logger = logging.getLogger(__name__)

REASON = "DistroPolicyExceptionExpired"


def event_name(exception: DistroPolicyException) -> str:
    key = f"{exception.metadata.uid or exception.ref}/{exception.spec.expires}"
    return f"{exception.name[:200]}.expired-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def expiry_message(exception: DistroPolicyException) -> str:
    spec = exception.spec
    ticket = f" (ticket {spec.ticket})" if spec.ticket else ""
    policies = ", ".join(
        p.policy_name + (f" ({', '.join(p.rule_names)})" if p.rule_names else "") for p in spec.policies
    )
    return (
        f"exception {exception.ref}{ticket} expired at {spec.expires} and is ignored: the workloads it "
        f"covered are judged by {policies} again. Reason it was given: {spec.reason}"
    )[:1024]


class ExpiryEvents:
    def __init__(self, api: Any) -> None:
        self._core: Any = kubernetes.client.CoreV1Api(api)  # a dict is sent as is
        self._told: set[str] = set()

    def post(self, expired: Sequence[DistroPolicyException], now: datetime | None = None) -> int:
        """One Event per exception in `expired` not told before; returns how many were posted."""
        posted = 0
        for exception in expired:
            namespace = exception.namespace
            name = event_name(exception)
            if namespace is None or name in self._told:
                continue
            try:
                self._core.create_namespaced_event(namespace, self._event(exception, name, now))
                posted += 1
                logger.warning("%s", expiry_message(exception))
            except kubernetes.client.ApiException as exc:
                if exc.status != 409:  # 409: told already, by this process or an earlier one
                    logger.warning("cannot post an event on exception %s: %s", exception.ref, exc.reason)
                    continue
            self._told.add(name)
        return posted

    @staticmethod
    def _event(exception: DistroPolicyException, name: str, now: datetime | None) -> dict[str, Any]:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        uid = exception.metadata.uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": exception.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": EXCEPTION_KIND,
                "name": exception.name,
                "namespace": exception.namespace,
                **({"uid": uid} if uid else {}),
            },
            "reason": REASON,
            "message": expiry_message(exception),
            "type": "Warning",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
