"""One decoded review -> the answer, with what the cluster knows: the namespace's labels, its pull
secrets, the policies in force. The decision itself is `distroguard.admission.admit`.

Cheap checks come first, so that nothing is read from the API server for requests that need no check:
the operation, the always-excluded namespaces, what the object asks to run; then the namespace's labels
(opt-out, policy selectors), then its pull secrets, and only then the images.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from distroguard.admission import AdmissionAnswer, AdmissionRequest, Skip, Workload, admit, excluded
from distroguard.admission.decide import DecisionMemo, FactsResolver
from distroguard.admission.workloads import containers_to_check
from distroguard.errors import InvalidObject
from distroguard.metrics import unresolved_reason
from distroguard.model import LifecycleLookup, Platform
from distroguard.operator.namespaces import NamespaceLabels
from distroguard.operator.observer import AdmissionObserver, NoObserver
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.pool import ResolverPool
from distroguard.operator.pullsecrets import NO_CREDENTIALS, PullSecrets

logger = logging.getLogger(__name__)

CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


@dataclass
class Admitter:
    policies: PolicyStore
    pool: ResolverPool
    namespaces: NamespaceLabels
    secrets: PullSecrets
    catalog: LifecycleLookup
    budget: float
    own_namespace: str | None = None
    platform: Platform | None = None
    observer: AdmissionObserver = field(default_factory=NoObserver)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    memo: DecisionMemo = field(default_factory=DecisionMemo)

    async def __call__(self, request: AdmissionRequest) -> AdmissionAnswer:
        """The answer; a failure of ours (or of the API server behind a lookup) is an error answer,
        logged with its stack trace, never an exception for kopf to render."""
        started = time.perf_counter()
        try:
            answer = await self._answer(request)
        except Exception as exc:
            logger.exception("admission request %s failed", request.uid)
            answer = AdmissionAnswer.error(f"{type(exc).__name__}: {exc} (request {request.uid})")
        unresolved = Counter(unresolved_reason(error) for error in answer.unresolved)
        self.observer.observe_admission(
            _verdict(answer), time.perf_counter() - started, answer.decision, unresolved
        )
        return answer

    async def _answer(self, request: AdmissionRequest) -> AdmissionAnswer:
        # The webhook configuration asks only for these; anything else runs no new image.
        if request.operation not in CHECKED_OPERATIONS:
            return AdmissionAnswer.allow()
        namespace = request.namespace
        if excluded(namespace, {}, self.own_namespace):
            return AdmissionAnswer.allow()
        try:
            outcome = containers_to_check(request)
        except InvalidObject:
            outcome = None  # admit() answers it, unless the namespace opted out
        if isinstance(outcome, Skip):
            return AdmissionAnswer.allow()
        labels = await self._labels(namespace)
        if excluded(namespace, labels, self.own_namespace):
            return AdmissionAnswer.allow()
        resolver: FactsResolver = self.pool.anonymous
        if isinstance(outcome, Workload) and namespace is not None:
            credentials = await self.secrets.get(namespace, outcome.pull_secrets, outcome.service_account)
            if credentials is not NO_CREDENTIALS:
                resolver = await self.pool.resolver(namespace, credentials)
        return await admit(
            request,
            resolver,
            self.policies.current(),
            self.catalog,
            budget=self.budget,
            now=self.clock(),
            namespace_labels=labels,
            platform=self.platform,
            workload=outcome if isinstance(outcome, Workload) else None,
            memo=self.memo,
        )

    async def _labels(self, namespace: str | None) -> Mapping[str, str]:
        if namespace is None:
            return {}
        return await self.namespaces.get(namespace)


def _verdict(answer: AdmissionAnswer) -> str:
    if answer.decision is not None:
        return answer.decision.verdict
    if answer.allowed:
        return "allow"
    return "error" if answer.code >= 500 else "deny"
