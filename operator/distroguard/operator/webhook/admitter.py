"""The webhook's handler: one decoded review -> `distroguard.admission.admit`, timed and counted.

Admission owns the decision; this is its wiring to the cluster (`AdmissionCluster`): a namespace's labels,
the resolver for a namespace and a workload's pull secrets, and the template of a pod's controller, all read
through TTL caches (a warm request reads nothing from the API server), and the resolver pool that keeps one
namespace's credentials to its own workloads.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from distroguard.admission import AdmissionAnswer, AdmissionRequest, Workload, admit
from distroguard.admission.controlled import Controller
from distroguard.admission.decide import DecisionMemo
from distroguard.errors import reason_of
from distroguard.model import Platform
from distroguard.model.platform import DEFAULT_PLATFORM
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.clock import Clock, system_clock
from distroguard.operator.exceptionstore import ExceptionStore
from distroguard.operator.observer import AdmissionObserver, NoObserver
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.pullsecrets import PullSecrets
from distroguard.operator.webhook.controllers import ControllerTemplates
from distroguard.operator.webhook.namespaces import NamespaceLabels
from distroguard.resolver.fairness import ColdLookups
from distroguard.resolver.routing import ResolverPool, RoutedResolver

logger = logging.getLogger(__name__)

_ONLY_DEFAULT: tuple[Platform, ...] = (DEFAULT_PLATFORM,)
_NONE_UNRESOLVED: Mapping[str, int] = MappingProxyType({})


@dataclass
class Admitter:
    policies: PolicyStore
    pool: ResolverPool
    namespaces: NamespaceLabels
    secrets: PullSecrets
    catalog: CatalogHolder
    """The EOL data in use, read once per review (a swap applies to the next review)."""
    budget: float
    own_namespace: str | None = None
    nodes: Callable[[], tuple[Platform, ...]] = field(default=lambda: _ONLY_DEFAULT)
    """The platforms that matter now (`operator.nodeplatforms`): read on every review, so a new Node's
    platform counts for the next one. The same tuple until they change: the warm path's caches (the
    resolver's recent answers, an offer's chosen entries) know it by identity."""
    observer: AdmissionObserver = field(default_factory=NoObserver)
    clock: Clock = system_clock
    memo: DecisionMemo = field(default_factory=DecisionMemo)
    cold: ColdLookups | None = None
    """Each namespace's share of cold lookups; None: unlimited."""
    controllers: ControllerTemplates | None = None
    """The templates of pods' controllers; None: no owner is ever confirmed (every pod is judged as a bare
    pod)."""
    exceptions: ExceptionStore | None = None
    """The DistroPolicyExceptions in force; None: none."""

    async def __call__(self, request: AdmissionRequest) -> AdmissionAnswer:
        """The answer; a failure of ours (or of the API server behind a lookup) is an error answer,
        logged with its stack trace, never an exception for the server to recover from."""
        started = time.perf_counter()
        try:
            answer = await admit(
                request,
                self,
                self.policies.current(),
                self.catalog.current(),
                budget=self.budget,
                now=self.clock(),
                own_namespace=self.own_namespace,
                memo=self.memo,
                exceptions=None if self.exceptions is None else self.exceptions.current(),
            )
        except Exception as exc:
            logger.exception("admission request %s failed", request.uid)
            answer = AdmissionAnswer.error(f"{type(exc).__name__}: {exc} (request {request.uid})")
        unresolved: Mapping[str, int] = _NONE_UNRESOLVED
        if answer.unresolved:
            unresolved = Counter(reason_of(error) for error in answer.unresolved)
        self.observer.observe_admission(
            _verdict(answer), time.perf_counter() - started, answer.decision, unresolved
        )
        return answer

    # ------------------------------------------------------------------------ AdmissionCluster

    async def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return await self.namespaces.get(namespace)

    def platforms(self) -> tuple[Platform, ...]:
        return self.nodes()

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        if self.controllers is None:
            return None
        return await self.controllers.images(controller, budget=budget)

    async def resolver(self, namespace: str | None, workload: Workload) -> RoutedResolver:
        if namespace is None:
            return self.pool.public
        credentials = await self.secrets.get(namespace, workload.pull_secrets, workload.service_account)
        routed = await self.pool.resolver(namespace, credentials)
        if self.cold is None:
            return routed
        return dataclasses.replace(routed, gate=self.cold.gate(namespace))


def _verdict(answer: AdmissionAnswer) -> str:
    if answer.decision is not None:
        return answer.decision.verdict
    if answer.allowed:
        return "allow"
    return "error" if answer.code >= 500 else "deny"
