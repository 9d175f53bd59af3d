"""The in-cluster audit: the one writer of ImageFacts, PolicyReports and violation Events.

An audit runs at start, every `interval`, and after workloads or policies change (at most once per
`debounce`: a rollout of many pods is one audit, not hundreds). Each audit lists every workload, resolves
its images through the same resolver pool and routing as admission (the same caches, the same rule that
a namespace's pull secrets serve only its own pods), evaluates every DistroPolicy whatever its action
with the same code path as admission (`distroguard.policy.evaluate`), then writes what changed.

Listing, evaluating and writing run in worker threads, so that in a process that also answers admission
reviews (`--role all`) the event loop keeps answering; the chart runs the audit in a Deployment of its
own, one replica, so admission never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from distroguard.audit.cluster import Cluster, Scope
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef, build_inventory
from distroguard.audit.platforms import Judging, ListedNodes, NodeView, judging
from distroguard.audit.policyreports import Tallies, results_of, summary_report, tallies, workload_report
from distroguard.audit.records import Seen, records_of
from distroguard.audit.resolve import Lookup
from distroguard.audit.results import AuditResult, ImageSummary, summarize
from distroguard.audit.run import assemble
from distroguard.eol import EolCatalog
from distroguard.model import DistroPolicy
from distroguard.model.facts import ImagePlatforms
from distroguard.model.platform import DEFAULT_PLATFORM, platforms_text
from distroguard.model.record import Access
from distroguard.operator.audit.events import EventRecorder, notice_of
from distroguard.operator.audit.exceptionevents import ExpiryEvents
from distroguard.operator.audit.inventorystore import InventoryStore
from distroguard.operator.audit.reportstore import ReportStore
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.clock import Clock, system_clock
from distroguard.operator.exceptionstore import ExceptionStore
from distroguard.operator.observer import AuditObserver, NoObserver
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.pullsecrets import PullSecrets
from distroguard.policy.scanning import scan_mode
from distroguard.resolver import Resolver
from distroguard.resolver.many import resolve_many_platforms
from distroguard.resolver.routing import NO_CREDENTIALS, ResolverPool

logger = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
"""A failed audit is tried again this soon (or at the next change)."""


@dataclass(frozen=True, slots=True)
class AuditSettings:
    interval: float = 3600.0
    """Seconds between full audits when nothing changes."""
    debounce: float = 10.0
    """Seconds to wait after a change before auditing (more changes meanwhile join the same audit)."""
    lookup_budget: float = 60.0
    """Seconds one image's lookup may take (an audit is not in the API server's path)."""
    concurrency: int = 8
    """Images resolved at the same time."""
    facts_ttl: timedelta = timedelta(days=7)
    """ImageFacts objects no workload used for this long are deleted."""
    touch_interval: timedelta = timedelta(hours=1)
    events: bool = True
    event_interval: float = 3600.0
    events_per_audit: int = 50


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    result: AuditResult
    seconds: float
    facts_written: int
    facts_deleted: int
    reports_written: int
    reports_deleted: int
    events: int
    found: Tallies
    """What it found, counted for metrics."""


@dataclass(slots=True)
class _Resolved:
    summaries: dict[Lookup, ImageSummary] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    judging: dict[WorkloadRef, Judging] = field(default_factory=dict)


class Auditor:
    def __init__(
        self,
        api: Any,
        *,
        pool: ResolverPool,
        secrets: PullSecrets,
        policies: PolicyStore,
        catalog: CatalogHolder,
        settings: AuditSettings,
        observer: AuditObserver | None = None,
        nodes: NodeView | None = None,
        clock: Clock = system_clock,
        exceptions: ExceptionStore | None = None,
    ) -> None:
        """`nodes`: the platforms of the cluster's Nodes (`operator.nodeplatforms`); a scheduled pod is
        judged on its node's, a workload without pods as admission judges it (linux/amd64 without).
        `catalog`: the EOL data in use, read once per audit (a swap applies to the next audit)."""
        self._cluster = Cluster(api, context="in-cluster")
        self._nodes: NodeView = nodes or ListedNodes()
        self._pool = pool
        self._secrets = secrets
        self._policies = policies
        self._catalog = catalog
        self.settings = settings
        self._observer: AuditObserver = observer or NoObserver()
        self._facts = InventoryStore(api, ttl=settings.facts_ttl, touch_interval=settings.touch_interval)
        self._reports = ReportStore(api)
        self._events = EventRecorder(
            api, interval=settings.event_interval, per_audit=settings.events_per_audit
        )
        self._changed = asyncio.Event()
        self._clock = clock
        self._exceptions = exceptions
        self._expiries = ExpiryEvents(api)
        self._stale_warned: tuple[EolCatalog, object] | None = None

    def poke(self) -> None:
        """Something a report depends on changed: audit soon."""
        self._changed.set()

    async def serve(self) -> None:
        """Audit until cancelled: now, then on every change (debounced) or every `interval`."""
        while True:
            wait = self.settings.interval
            try:
                await self.audit()
            except Exception:  # the API server restarting, a conflict: tried again soon, not in an hour
                logger.exception("the audit failed; trying again in %g s", RETRY_SECONDS)
                wait = min(wait, RETRY_SECONDS)
            # A timeout scope, not `asyncio.wait_for`, whose task for the wait (Python 3.11) kopf would
            # count as hung at shutdown and wait for in vain before cancelling it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()
            await asyncio.sleep(self.settings.debounce)

    async def audit(self) -> AuditOutcome:
        self._changed.clear()
        started = time.monotonic()
        now = self._clock()
        policies = self._policies.current()
        exceptions = None if self._exceptions is None else self._exceptions.current()
        catalog = self._catalog.current()
        stale = self._catalog.stale(now.date())
        if stale is not None and self._stale_warned != (catalog, now.date()):
            logger.warning("audit: %s", stale)  # once a day per catalog
            self._stale_warned = (catalog, now.date())
        inventory = await asyncio.to_thread(
            lambda: build_inventory(self._cluster.pods(Scope(None)), self._cluster.owners(Scope(None)))
        )
        listed = time.monotonic()
        for problem in inventory.problems:
            logger.warning("audit: %s", problem)
        lookups, resolved = await self._resolve(inventory.workloads, now, catalog)
        looked_up = time.monotonic()
        labels = await asyncio.to_thread(
            self._cluster.namespace_labels, sorted({w.ref.namespace for w in inventory.workloads})
        )
        result = await asyncio.to_thread(
            assemble,
            inventory.workloads,
            lookups,
            resolved.summaries,
            policies,
            catalog,
            now,
            labels,
            context=self._cluster.context,
            namespace=None,
            problems=inventory.problems,
            judging=resolved.judging,
            exceptions=exceptions,
        )
        judged = time.monotonic()
        outcome = await asyncio.to_thread(self._write, result, resolved.seen, policies, now, started, stale)
        logger.info(
            "audit phases: listed in %.1f s, images looked up in %.1f s, judged in %.1f s, written in %.1f s",
            listed - started,
            looked_up - listed,
            judged - looked_up,
            time.monotonic() - judged,
        )
        found = outcome.found
        self._observer.observe_audit(
            outcome.seconds, found.images, found.violations, found.workloads, found.eol_workloads
        )
        logger.info(
            "audit completed: %d workloads, %d images in %.1f s; ImageFacts %d written, %d deleted; "
            "PolicyReports %d written, %d deleted; %d events",
            len(result.workloads),
            len(result.images),
            outcome.seconds,
            outcome.facts_written,
            outcome.facts_deleted,
            outcome.reports_written,
            outcome.reports_deleted,
            outcome.events,
        )
        return outcome

    async def _resolve(
        self, workloads: Sequence[AuditedWorkload], now: datetime, catalog: EolCatalog
    ) -> tuple[dict[tuple[WorkloadRef, str], Lookup], _Resolved]:
        """Each distinct (credentials, image, platforms) once, `concurrency` at a time, routed as admission
        routes it, on the platforms its workload is judged on (`audit.platforms`)."""
        lookups: dict[tuple[WorkloadRef, str], Lookup] = {}
        targets: dict[Lookup, tuple[str, Resolver]] = {}
        resolved = _Resolved()
        for workload in workloads:
            ref = workload.ref
            resolved.judging[ref] = judging(workload, self._nodes)
            wanted = platforms_text(resolved.judging[ref][0])
            try:
                credentials = await self._secrets.get(
                    ref.namespace, workload.pull_secrets, workload.service_account
                )
            except Exception as exc:  # an unreadable secret leaves the images to the anonymous resolver
                logger.warning("audit: pull secrets of %s cannot be read: %s", ref, exc)
                credentials = NO_CREDENTIALS
            routed = await self._pool.resolver(ref.namespace, credentials)
            for container in workload.containers:
                resolver = routed.target(container.image)
                # A namespace's credentials serve its own workloads only: the key says whose they are.
                private = resolver is not routed.anonymous
                owner = f"{ref.namespace}/{credentials.fingerprint}" if private else ""
                key = Lookup(container.image, owner, wanted)
                lookups[ref, container.image] = key
                targets.setdefault(key, (container.image, resolver))
        outcomes = await resolve_many_platforms(
            targets,
            mode=scan_mode(self._policies.current()),
            budget=self.settings.lookup_budget,
            concurrency=self.settings.concurrency,
            each={key: key.wanted(DEFAULT_PLATFORM) for key in targets},
        )
        today = now.date()
        for lookup, outcome in outcomes.items():
            summary = summarize(lookup.image, outcome, catalog, today)
            resolved.summaries[lookup] = summary
            if isinstance(outcome, ImagePlatforms) and outcome.facts:
                target = targets[lookup][1]
                digest = target.known_digest(lookup.image)
                access: Access = "private" if lookup.credentials else "public"
                offer = target.known_offer(lookup.image)
                resolved.seen.append(Seen(lookup.image, summary.platforms, digest, access, offer))
        return lookups, resolved

    def _write(
        self,
        result: AuditResult,
        seen: Sequence[Seen],
        policies: Sequence[DistroPolicy],
        now: datetime,
        started: float,
        stale_eol: str | None = None,
    ) -> AuditOutcome:
        """Runs in a worker thread."""
        begun = time.monotonic()
        facts = self._facts.sync(records_of(seen, now), now)
        facts_done = time.monotonic()
        results = results_of(result, policies, now)
        reports = (workload_report(w, results[w.ref]) for w in result.workloads if w.covered)
        summary = summary_report(result, results, now, stale_eol=stale_eol) if policies else None
        written = self._reports.sync(reports, summary)
        reports_done = time.monotonic()
        events = 0
        if self.settings.events:
            notices = [n for n in (notice_of(w) for w in result.workloads) if n is not None]
            events = self._events.post(notices)
            if self._exceptions is not None:  # ignored from now on: told once, on the exception
                events += self._expiries.post(self._exceptions.expired(now), now)
        logger.info(
            "audit writes: ImageFacts in %.1f s, PolicyReports in %.1f s, events in %.1f s",
            facts_done - begun,
            reports_done - facts_done,
            time.monotonic() - reports_done,
        )
        return AuditOutcome(
            result=result,
            seconds=time.monotonic() - started,
            facts_written=facts.written,
            facts_deleted=facts.deleted,
            reports_written=written.written,
            reports_deleted=written.deleted,
            events=events,
            found=tallies(result, results),
        )
