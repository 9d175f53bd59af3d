"""The DistroPolicyExceptions in force: kept up to date by a kopf event handler, handed to admission and
the audit as one immutable snapshot (`policy.exceptions.Exceptions`). A change applies to the next request.

An exception is checked when it arrives, against the clock at that moment: one that does not validate (the
CRD schema catches most mistakes before they are stored; this catches the rest) or ends further ahead than
`--exception-max-days` is logged with the reason and left out; one kept in a namespace the cluster does
not honour (`--exception-namespaces`, `--exception-admin-namespace`) is logged and left out. An exception
past its end stays in the snapshot (the evaluation ignores it at `now`, so that a clock moved back in a
test sees it again); `expired` lists those, for the audit's one Event each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from distroguard.errors import InvalidException
from distroguard.model.exception import DistroPolicyException, ExceptionLimits
from distroguard.model.validation import parse_exception
from distroguard.operator.clock import Clock, system_clock
from distroguard.policy.exceptions import Exceptions, ExceptionTrust, ending_within

logger = logging.getLogger(__name__)

Key = tuple[str, str]


class ExceptionStore:
    def __init__(
        self,
        *,
        trust: ExceptionTrust | None = None,
        limits: ExceptionLimits | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.trust = trust or ExceptionTrust()
        self.limits = limits or ExceptionLimits()
        self._clock = clock
        self._cluster: dict[Key, DistroPolicyException] = {}
        self._current = Exceptions((), self.trust)
        self._rebuild()

    def current(self) -> Exceptions:
        """The exceptions for the next evaluation (a snapshot: later changes do not touch it)."""
        return self._current

    def expired(self, now: datetime) -> list[DistroPolicyException]:
        """The exceptions in the snapshot that have ended at `now`."""
        return [e for e in self._current.items if e.spec.ends <= now]

    def ending_within(self, days: float) -> int:
        """How many exceptions in force (honoured, not yet ended) end within `days` of the clock's now."""
        return len(ending_within(self._current.items, self._clock(), days))

    def ends(self) -> list[tuple[str, str, float]]:
        """(namespace, name, Unix time it ends) of each exception in force at the clock's now."""
        now = self._clock()
        return [
            (e.namespace or "", e.name, e.spec.ends.timestamp())
            for e in self._current.items
            if now < e.spec.ends
        ]

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One watch event of a DistroPolicyException object."""
        metadata = body.get("metadata") or {}
        name, namespace = metadata.get("name"), metadata.get("namespace")
        if not isinstance(name, str) or not name or not isinstance(namespace, str):
            return
        key = (namespace, name)
        where = f"DistroPolicyException {namespace}/{name}"
        if event_type == "DELETED":
            if self._cluster.pop(key, None) is not None:
                logger.info("exception %s/%s removed", namespace, name)
                self._rebuild()
            return
        document = {k: v for k, v in body.items() if k != "status"}
        try:
            exception = parse_exception(document, where)
            problems = self.limits.problems(exception, self._clock())
            if problems:
                raise InvalidException(where, problems)
        except InvalidException as exc:
            logger.error("%s; the exception is ignored until it is fixed", exc)
            self._forget(key)
            return
        if not self.trust.honours(exception):
            why = self._where()
            logger.warning("%s is ignored: exceptions are not honoured in its namespace (%s)", where, why)
            self._forget(key)
            return
        if self._cluster.get(key) != exception:
            self._cluster[key] = exception
            logger.info(
                "exception %s loaded (policies %s, expires %s)",
                exception.ref,
                ", ".join(p.policy_name for p in exception.spec.policies),
                exception.spec.expires,
            )
            self._rebuild()

    def _where(self) -> str:
        if self.trust.admin_namespace is not None:
            return f"only in {self.trust.admin_namespace}, --exception-admin-namespace"
        return f"only in {', '.join(self.trust.namespaces) or 'none'}, --exception-namespaces"

    def _forget(self, key: Key) -> None:
        if self._cluster.pop(key, None) is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        self._current = Exceptions(tuple(self._cluster[key] for key in sorted(self._cluster)), self.trust)
