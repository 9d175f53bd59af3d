"""One audit from start to end: list, group, resolve each distinct image once, evaluate, summarise."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from distroguard.audit.cluster import Cluster, PullCredentials, Scope
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef, build_inventory
from distroguard.audit.platforms import Judging, ListedNodes, judging
from distroguard.audit.resolve import Lookup, Outcome, ResolveSettings, lookup_for, resolve_lookups
from distroguard.audit.results import AuditResult, ImageSummary, audit_workloads, summarize
from distroguard.eol import EolCatalog
from distroguard.model import Platform
from distroguard.model.platform import platforms_text
from distroguard.model.policy import DistroPolicy
from distroguard.policy.exceptions import Exceptions
from distroguard.registry.credentials import CredentialStore


class Progress:
    """What a long audit reports as it goes; the default reports nothing."""

    def start(self, total: int) -> None:
        """`total` distinct lookups are about to start."""

    def advance(self, lookup: Lookup, outcome: Outcome) -> None:
        """One lookup finished."""


@dataclass(frozen=True, slots=True)
class AuditRequest:
    scope: Scope
    policies: Sequence[DistroPolicy]
    resolve: ResolveSettings
    catalog: EolCatalog
    now: datetime
    use_pull_secrets: bool = False
    platforms: tuple[Platform, ...] | None = None
    """The platforms images are judged on (`--platform`); None: those of the cluster's Nodes, a scheduled
    pod's being its node's (`audit.platforms`)."""
    exceptions: Exceptions | None = None
    """The DistroPolicyExceptions applied (`distroguard audit` reads the cluster's)."""


def _credentials(
    cluster: Cluster, workloads: Sequence[AuditedWorkload], wanted: bool
) -> tuple[dict[WorkloadRef, PullCredentials], list[str]]:
    if not wanted:
        return {}, []
    found: dict[tuple[str, tuple[str, ...], str], PullCredentials] = {}
    by_workload: dict[WorkloadRef, PullCredentials] = {}
    problems: list[str] = []
    for workload in workloads:
        key = (workload.ref.namespace, workload.pull_secrets, workload.service_account)
        if key not in found:
            found[key] = cluster.pull_credentials(*key)
            problems.extend(found[key].problems)
        by_workload[workload.ref] = found[key]
    return by_workload, problems


def run_audit(cluster: Cluster, request: AuditRequest, progress: Progress | None = None) -> AuditResult:
    """Raises `ClusterError` when the API cannot be listed; an image that cannot be resolved is a problem
    of the result (and an onUnresolved finding), not an exception."""
    progress = progress or Progress()
    inventory = build_inventory(cluster.pods(request.scope), cluster.owners(request.scope))
    workloads = inventory.workloads
    pull, problems = _credentials(cluster, workloads, request.use_pull_secrets)
    problems = [*inventory.problems, *problems]
    stores: dict[str, CredentialStore] = {p.fingerprint: p.store for p in pull.values() if p.fingerprint}
    mirrors = request.resolve.registry.registry_mirrors if request.resolve.registry else {}
    view = (
        ListedNodes(fixed=request.platforms) if request.platforms else ListedNodes(cluster.node_platforms())
    )
    judged: dict[WorkloadRef, Judging] = {w.ref: judging(w, view) for w in workloads}
    lookups: dict[tuple[WorkloadRef, str], Lookup] = {}
    for workload in workloads:
        credentials = pull.get(workload.ref)
        wanted = platforms_text(judged[workload.ref][0])
        for container in workload.containers:
            found = (
                lookup_for(container.image, credentials.store, credentials.fingerprint, mirrors)
                if credentials is not None
                else Lookup(container.image)
            )
            lookups[workload.ref, container.image] = Lookup(found.image, found.credentials, wanted)
    distinct = sorted(set(lookups.values()))
    progress.start(len(distinct))
    outcomes = asyncio.run(resolve_lookups(distinct, request.resolve, stores, progress.advance))
    today = request.now.date()
    summaries = {
        lookup: summarize(lookup.image, outcomes[lookup], request.catalog, today) for lookup in distinct
    }
    labels = cluster.namespace_labels(sorted({w.ref.namespace for w in workloads}))
    return assemble(
        workloads,
        lookups,
        summaries,
        request.policies,
        request.catalog,
        request.now,
        labels,
        context=cluster.context,
        namespace=request.scope.namespace,
        problems=problems,
        judging=judged,
        exceptions=request.exceptions,
    )


def assemble(
    workloads: Sequence[AuditedWorkload],
    lookups: Mapping[tuple[WorkloadRef, str], Lookup],
    summaries: Mapping[Lookup, ImageSummary],
    policies: Sequence[DistroPolicy],
    catalog: EolCatalog,
    now: datetime,
    labels: Mapping[str, Mapping[str, str]],
    *,
    context: str,
    namespace: str | None,
    problems: Sequence[str] = (),
    judging: Mapping[WorkloadRef, Judging] | None = None,
    exceptions: Exceptions | None = None,
) -> AuditResult:
    """The result, once every lookup has its summary: evaluation, and each image listed once."""
    found = list(problems)
    images: dict[str, ImageSummary] = {}
    for lookup in sorted(summaries):  # one per reference; a resolved one wins over a failed one
        summary = summaries[lookup]
        if summary.error:
            found.append(f"{lookup.image}: {summary.error}")
        if lookup.image not in images or (images[lookup.image].error and not summary.error):
            images[lookup.image] = summary
    results = audit_workloads(
        workloads,
        {key: summaries[lookup] for key, lookup in lookups.items()},
        policies,
        catalog,
        now,
        labels,
        judging,
        exceptions,
    )
    return AuditResult(
        generated=now,
        context=context,
        namespace=namespace,
        policies=tuple(p.name for p in policies),
        catalog_snapshot=catalog.snapshot,
        workloads=results,
        problems=tuple(dict.fromkeys(found)),
        images=tuple(images.values()),
    )
