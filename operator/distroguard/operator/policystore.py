"""The policies in force: DistroPolicy objects from the cluster (kept up to date by a kopf event handler)
and policy files read at start. A change applies to the next request.

An invalid policy is logged and left out (the CRD schema catches most mistakes before they are stored;
this catches the rest), never fatal. A cluster policy replaces a file policy of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from distroguard.errors import InvalidPolicy
from distroguard.model import DistroPolicy
from distroguard.model.validation import parse_policy

logger = logging.getLogger(__name__)


class PolicyStore:
    def __init__(self, files: Iterable[DistroPolicy] = ()) -> None:
        self._files = {policy.name: policy for policy in files}
        self._cluster: dict[str, DistroPolicy] = {}
        self._current: tuple[DistroPolicy, ...] = ()
        self._rebuild()

    def current(self) -> tuple[DistroPolicy, ...]:
        """The policies for the next evaluation (a snapshot: later changes do not touch it)."""
        return self._current

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One watch event of a DistroPolicy object."""
        name = body.get("metadata", {}).get("name")
        if not isinstance(name, str) or not name:
            return
        if event_type == "DELETED":
            if self._cluster.pop(name, None) is not None:
                logger.info("policy %s removed", name)
                self._rebuild()
            return
        # `status` is written by controllers, not by the policy's author: the model does not know it.
        document = {key: value for key, value in body.items() if key != "status"}
        try:
            policy = parse_policy(document, f"DistroPolicy {name}")
        except InvalidPolicy as exc:
            logger.error("%s; the policy is ignored until it is fixed", exc)
            if self._cluster.pop(name, None) is not None:
                self._rebuild()
            return
        if self._cluster.get(name) != policy:
            self._cluster[name] = policy
            logger.info("policy %s loaded (action %s)", name, policy.spec.action)
            self._rebuild()

    def _rebuild(self) -> None:
        merged = {**self._files, **self._cluster}
        self._current = tuple(merged[name] for name in sorted(merged))
