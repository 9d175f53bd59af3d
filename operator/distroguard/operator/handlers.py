"""The kopf handlers, registered on a registry of their own (not kopf's global one, so that building an
operator twice in one process, as tests do, registers nothing twice):

- a login with the process's Kubernetes configuration;
- `@kopf.on.event` on DistroPolicy objects, feeding the policy store (and telling the audit);
- `@kopf.on.event` on DistroPolicyException objects, feeding the exception store (and telling the audit);
- `@kopf.on.event` on EOLCatalog objects, swapping the EOL data in use (and telling the audit);
- `@kopf.on.event` on the workload kinds, telling the audit that something changed (audit role; pods are
  followed by `podwatch`).

ImageFacts are followed by `factswatch`, not by kopf (a kopf watch costs too much at 50,000 objects).

No finalizers, annotations, timers, daemons or indexes (`@kopf.index` would keep every watched object in
memory; these handlers keep what they need and no more), and pods are never touched.

No `@kopf.on.validate` handlers: admission reviews are answered by `server.AdmissionServer`'s own path
(decode -> route -> admit -> respond). kopf starts and stops that server because it is set as
`settings.admission.server` (see `run`); kopf needs no admission handler for that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from distroguard.audit.cluster import Cluster
from distroguard.model.api import (
    CATALOG_PLURAL,
    EXCEPTION_PLURAL,
    GROUP,
    POLICY_PLURAL,
    VERSION,
)
from distroguard.model.workloads import OWNER_KINDS, WorkloadKind
from distroguard.operator.audit.auditor import Auditor
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.exceptionstore import ExceptionStore
from distroguard.operator.kubeclient import connection_info
from distroguard.operator.policystore import PolicyStore

logger = logging.getLogger(__name__)


def build_registry(
    configuration: Any,
    policies: PolicyStore,
    *,
    auditor: Auditor | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    exceptions: ExceptionStore | None = None,
    catalogs: CatalogHolder | None = None,
) -> kopf.OperatorRegistry:
    """`on_stop` is awaited when kopf stops, once its own tasks are done and before it takes the tasks still
    running: there the operator cancels its lookups (`ResolverPool.abort`), so that none fails after it."""
    registry = kopf.OperatorRegistry()

    if on_stop is not None:

        @kopf.on.cleanup(registry=registry)
        async def stop(**_: Any) -> None:
            await on_stop()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(configuration)

    @kopf.on.event(group=GROUP, version=VERSION, plural=POLICY_PLURAL, registry=registry)
    async def policy_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        policies.observe(type, body)
        if auditor is not None and type is not None:
            auditor.poke()

    if exceptions is not None:

        @kopf.on.event(group=GROUP, version=VERSION, plural=EXCEPTION_PLURAL, registry=registry)
        async def exception_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            exceptions.observe(type, body)
            if auditor is not None and type is not None:
                auditor.poke()

    if catalogs is not None:

        @kopf.on.event(group=GROUP, version=VERSION, plural=CATALOG_PLURAL, registry=registry)
        async def catalog_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            if catalogs.observe(type, body) and auditor is not None:
                auditor.poke()

    if auditor is not None:
        _audit_triggers(registry, auditor)
    return registry


AUDITED: tuple[WorkloadKind, ...] = OWNER_KINDS
"""The workload kinds whose changes a kopf watch tells the audit (pods: see `podwatch`, which costs a small
fraction of a kopf watch of every pod)."""


def _audit_triggers(registry: kopf.OperatorRegistry, auditor: Auditor) -> None:
    """Workload changes that can change a report: a workload created or deleted, its spec changed (its
    generation). Status updates, which are most events, change nothing we report."""
    generations: dict[str, Any] = {}

    async def workload_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        uid = str(body.get("metadata", {}).get("uid") or "")
        if type == "DELETED":
            generations.pop(uid, None)
            auditor.poke()
            return
        generation = body.get("metadata", {}).get("generation")
        known = generations.get(uid, _UNSEEN)
        generations[uid] = generation
        # The first listing (type None) is what the audit at start reads anyway.
        if type is not None and known != generation:
            auditor.poke()

    for kind in AUDITED:
        kopf.on.event(group=kind.group, version=kind.version, plural=kind.plural, registry=registry)(
            workload_event
        )


_UNSEEN = object()


def load_cluster_policies(api: Any, policies: PolicyStore) -> None:
    """Read the cluster's DistroPolicies into `policies` now (blocking: run in a worker thread)."""
    for item in Cluster(api).policies():
        policies.observe(None, item)


def load_cluster_exceptions(api: Any, exceptions: ExceptionStore) -> None:
    """Read the cluster's DistroPolicyExceptions into `exceptions` now (blocking: run in a worker thread)."""
    for item in Cluster(api).exceptions():
        exceptions.observe(None, item)
