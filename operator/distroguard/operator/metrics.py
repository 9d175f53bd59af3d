"""Prometheus metrics of one distroguard process, and the HTTP endpoint that serves them.

    metrics = Metrics()
    metrics.track_cache(resolver.cache)
    metrics.track_registry(resolver.client)
    metrics.track_catalog(lambda: holder.catalog)
    server = await metrics.serve("0.0.0.0", 9090)      # GET /metrics, GET /healthz
    ...
    metrics.observe_admission("deny", 0.012, decision)
    ...
    await server.stop()

Every `Metrics` owns its own `CollectorRegistry`: several instances (tests, or two processes' worth in one)
never clash, and nothing is registered in prometheus_client's global registry.

| metric                                             | type      | labels           | set by            |
|----------------------------------------------------|-----------|------------------|-------------------|
| distroguard_admission_duration_seconds             | histogram | verdict          | observe_admission |
| distroguard_admission_requests_total               | counter   | verdict          | observe_admission |
| distroguard_admission_policy_requests_total        | counter   | policy, action   | observe_admission |
| distroguard_unresolved_images_total                | counter   | reason           | observe_admission |
| distroguard_cache_lookups_total                    | counter   | tier, result     | track_cache       |
| distroguard_registry_requests_total                | counter   | registry, status | track_registry    |
| distroguard_registry_received_bytes_total          | counter   | registry         | track_registry    |
| distroguard_eol_catalog_age_days                   | gauge     |                  | track_catalog     |
| distroguard_audit_last_completed_timestamp_seconds | gauge     |                  | audit_completed   |
| distroguard_audit_duration_seconds                 | histogram |                  | observe_audit     |
| distroguard_audit_images                           | gauge     | os, version,     | observe_audit     |
|                                                    |           | libc, eol_state  |                   |
| distroguard_audit_violations                       | gauge     | policy, rule,    | observe_audit     |
|                                                    |           | result           |                   |
| distroguard_audit_workloads                        | gauge     | verdict          | observe_audit     |
| distroguard_audit_eol_workloads                    | gauge     | os, version      | observe_audit     |
| distroguard_exceptions_ending_soon                 | gauge     |                  | track_exceptions  |
| distroguard_facts_requests_total                   | counter   | endpoint,        | observe_facts     |
|                                                    |           | outcome          |                   |
| distroguard_exception_end_timestamp_seconds        | gauge     | exception_       | track_exceptions  |
|                                                    |           | namespace,       |                   |
|                                                    |           | exception        |                   |

The cache, registry and catalog figures are read when scraped (custom collectors and gauge functions), so
the hot paths that produce them pay for a dict increment and nothing else. Everything is read and written on
the event loop's thread: serve the endpoint from the loop that does the work (`serve` does).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from distroguard.eol import EolCatalog
from distroguard.errors import DeadlineExceeded, RegistryUnavailable
from distroguard.model import Decision
from distroguard.registry.client import RegistryClient
from distroguard.registry.meter import RegistryStats
from distroguard.resolver.cache import FactsCache

__all__ = [
    "ADMISSION_BUCKETS",
    "Metrics",
    "MetricsServer",
]

EXCEPTIONS_ENDING_DAYS = 30
"""The horizon of `distroguard_exceptions_ending_soon`."""
AUDIT_BUCKETS: tuple[float, ...] = (1, 5, 10, 30, 60, 120, 300, 600, 1800)
_DECISIONS_KEPT = 1024
"""Decisions whose policy_requests series are kept found (then forgotten all at once)."""
ADMISSION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds: 1 ms (a warm answer) to 10 s (the API server's default webhook timeout)."""

VERDICTS = ("allow", "warn", "deny")
"""Verdicts whose series exist from the start (at 0); any other string (e.g. "error") is accepted too."""

UNRESOLVED_REASONS = (DeadlineExceeded.reason, RegistryUnavailable.reason)
"""Reasons whose series exist from the start (at 0): the budget ran out, a registry is down. The label is
the error's own `reason` (`distroguard.errors`), a fixed set; any other is counted as it comes."""
CACHE_TIERS = ("tags", "facts", "bases", "failures", "hosts")
CACHE_RESULTS = ("hit", "miss")


def _today() -> date:
    return datetime.now(UTC).date()


class CacheCollector(Collector):
    """`distroguard_cache_lookups_total{tier,result}`: the sum of the tracked caches' `stats`."""

    def __init__(self) -> None:
        self.caches: list[FactsCache] = []
        self.retired: Counter[str] = Counter()
        """The final counts of caches no longer tracked, so that the sums never go down."""

    def describe(self) -> Iterable[Metric]:
        yield self._family()

    def collect(self) -> Iterable[Metric]:
        totals: Counter[str] = Counter(self.retired)
        for cache in tuple(self.caches):
            totals.update(dict(cache.stats))
        family = self._family()
        keys = [f"{tier}.{result}" for tier in CACHE_TIERS for result in CACHE_RESULTS]
        keys += sorted(k for k in totals if k not in keys)
        for key in keys:
            tier, _, result = key.partition(".")
            family.add_metric([tier, result], totals[key])
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "distroguard_cache_lookups",
            "Resolver cache lookups by tier (tags, facts, bases, failures) and result (hit, miss).",
            labels=["tier", "result"],
        )


class RegistryCollector(Collector):
    """Requests and bytes of the tracked registry clients (or shared `RegistryStats`), summed."""

    def __init__(self) -> None:
        self.stats: list[RegistryStats] = []
        self.retired = RegistryStats()
        """The final counts of clients no longer tracked, so that the sums never go down."""

    def describe(self) -> Iterable[Metric]:
        yield from self._families()

    def collect(self) -> Iterable[Metric]:
        requests: Counter[tuple[str, str]] = Counter(self.retired.requests)
        received: Counter[str] = Counter(self.retired.received)
        for stats in tuple(self.stats):
            requests.update(dict(stats.requests))
            received.update(dict(stats.received))
        requests_family, bytes_family = self._families()
        for (registry, status), count in sorted(requests.items()):
            requests_family.add_metric([registry, status], count)
        for registry, count in sorted(received.items()):
            bytes_family.add_metric([registry], count)
        yield requests_family
        yield bytes_family

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "distroguard_registry_requests",
                "HTTP requests sent to registries (retries and redirect hops included), by registry and "
                "status class (2xx..5xx, or error when no answer came).",
                labels=["registry", "status"],
            ),
            CounterMetricFamily(
                "distroguard_registry_received_bytes",
                "Body bytes read from registries (manifests, blobs, tokens), by registry.",
                labels=["registry"],
            ),
        )


ExceptionEnd = tuple[str, str, float]
"""(namespace, name, Unix time at which it ends) of one exception in force."""


class ExceptionEndsCollector(Collector):
    """`distroguard_exception_end_timestamp_seconds{exception_namespace,exception}`, read when scraped.

    One series per exception in force: as many as the cluster's honoured exceptions, which only those
    allowed to create them add. The labels are not `namespace` and `name`, which Prometheus's Kubernetes
    discovery gives the scraped pod."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[ExceptionEnd]] | None = None

    def describe(self) -> Iterable[Metric]:
        yield self._family()

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for namespace, name, ends in sorted(self.source() if self.source is not None else ()):
            family.add_metric([namespace, name], ends)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "distroguard_exception_end_timestamp_seconds",
            "Unix time at which each DistroPolicyException in force ends (its spec's expires), by the "
            "exception's namespace and name; an exception that has ended is no longer listed.",
            labels=["exception_namespace", "exception"],
        )


class MetricsServer:
    """The running /metrics endpoint; `stop()` closes it."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port
        """The port bound (the real one when 0 was asked for)."""

    async def stop(self) -> None:
        """Stop listening and close open connections; safe to call twice."""
        await self._runner.cleanup()


class Metrics:
    """The metrics of one process, in a registry of their own (`self.registry`)."""

    def __init__(self, *, process: bool = True, today: Callable[[], date] = _today) -> None:
        """`process`: also export process_*, python_info and python_gc_* (off in tests that count
        series). `today` gives the date that catalog ages are measured to.
        """
        self.registry = CollectorRegistry(auto_describe=True)
        self._today = today
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

        self.admission_duration = Histogram(
            "distroguard_admission_duration_seconds",
            "Time to answer one admission review, from decoding to the answer, by verdict.",
            ["verdict"],
            buckets=ADMISSION_BUCKETS,
            registry=self.registry,
        )
        self.admission_requests = PromCounter(
            "distroguard_admission_requests",
            "Admission reviews answered, by verdict (allow, warn, deny; error when our code failed).",
            ["verdict"],
            registry=self.registry,
        )
        self.policy_requests = PromCounter(
            "distroguard_admission_policy_requests",
            "Admission reviews in which a policy found a problem, by policy and the action it took "
            "(deny, warn, audit); a review counts once per policy and action, however many containers.",
            ["policy", "action"],
            registry=self.registry,
        )
        self.unresolved_images = PromCounter(
            "distroguard_unresolved_images",
            "Images whose facts were not known in time for an admission answer, by the error's reason "
            "(deadline-exceeded: the lookup budget ran out; registry-unavailable, unauthorized...).",
            ["reason"],
            registry=self.registry,
        )
        self.catalog_age = Gauge(
            "distroguard_eol_catalog_age_days",
            "Days since the snapshot date of the EOL catalog in use; NaN until a catalog is tracked.",
            registry=self.registry,
        )
        self.catalog_age.set(math.nan)
        self.exceptions_ending = Gauge(
            "distroguard_exceptions_ending_soon",
            f"DistroPolicyExceptions in force that end within {EXCEPTIONS_ENDING_DAYS} days; 0 until "
            "exceptions are tracked.",
            registry=self.registry,
        )
        self.audit_completed_at = Gauge(
            "distroguard_audit_last_completed_timestamp_seconds",
            "Unix time at which the last cluster audit completed; 0 until one has (set by the audit).",
            registry=self.registry,
        )
        self.audit_duration = Histogram(
            "distroguard_audit_duration_seconds",
            "Time one cluster audit took, from listing the workloads to the last report written.",
            buckets=AUDIT_BUCKETS,
            registry=self.registry,
        )
        self.audit_images = Gauge(
            "distroguard_audit_images",
            "Distinct images the last audit found running, by distribution, version, C library and the "
            "release's support state (active, security, extended, eol, rolling, unknown, no-os).",
            ["os", "version", "libc", "eol_state"],
            registry=self.registry,
        )
        self.audit_violations = Gauge(
            "distroguard_audit_violations",
            "Workloads the last audit found failing a policy's rule, by policy, rule and result (fail, "
            "warn, error), whatever the policy's action.",
            ["policy", "rule", "result"],
            registry=self.registry,
        )
        self.audit_workloads = Gauge(
            "distroguard_audit_workloads",
            "Workloads the last audit evaluated, by verdict (allow, warn, deny).",
            ["verdict"],
            registry=self.registry,
        )
        self.facts_requests = PromCounter(
            "distroguard_facts_requests",
            "Facts API requests answered, by endpoint (gatekeeper, facts) and outcome (ok; partial: some "
            "of a Gatekeeper request's keys failed; else the reason of the failure, e.g. deadline-exceeded).",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        for endpoint in ("gatekeeper", "facts"):
            self.facts_requests.labels(endpoint, "ok")
        self.audit_eol_workloads = Gauge(
            "distroguard_audit_eol_workloads",
            "Workloads the last audit found running an image on a distribution release past its end of "
            "life, by distribution and release (as distroguard_audit_images names them); a workload counts "
            "once per such release, whatever the policies say.",
            ["os", "version"],
            registry=self.registry,
        )
        # The hot path skips prometheus_client's label lookup (a lock and a dict) for known verdicts.
        self._by_verdict: dict[str, tuple[Histogram, PromCounter]] = {
            verdict: (self.admission_duration.labels(verdict), self.admission_requests.labels(verdict))
            for verdict in VERDICTS
        }
        self._by_decision: dict[int, tuple[Decision, tuple[Any, ...]]] = {}
        for reason in UNRESOLVED_REASONS:
            self.unresolved_images.labels(reason)

        self._caches = CacheCollector()
        self._registries = RegistryCollector()
        self._exception_ends = ExceptionEndsCollector()
        self.registry.register(self._caches)
        self.registry.register(self._registries)
        self.registry.register(self._exception_ends)

    # ------------------------------------------------------------------ recording

    def observe_admission(
        self,
        verdict: str,
        seconds: float,
        decision: Decision | None = None,
        unresolved: int | Mapping[str, int] = 0,
    ) -> None:
        """One answered admission review.

        `decision` (when policies were evaluated) counts each (policy, action) of its findings once.
        `unresolved`: images answered without facts, by the reason of their error (`DistroguardError.reason`),
        or a bare count when the caller does not know why (counted as `error`, the base class's reason).
        """
        children = self._by_verdict.get(verdict)
        if children is None:
            children = self._by_verdict[verdict] = (
                self.admission_duration.labels(verdict),
                self.admission_requests.labels(verdict),
            )
        children[0].observe(seconds)
        children[1].inc()
        if decision is not None and decision.findings:
            for child in self._policy_children(decision):
                child.inc()
        if not unresolved:
            return
        counts: Mapping[str, int] = {"error": unresolved} if isinstance(unresolved, int) else unresolved
        for reason, count in counts.items():
            if count:
                self.unresolved_images.labels(reason).inc(count)

    def _policy_children(self, decision: Decision) -> tuple[Any, ...]:
        """The policy_requests series a decision counts in, each (policy, action) once: found once per
        decision (the decision memo gives identical reviews the same decision object)."""
        kept = self._by_decision.get(id(decision))
        if kept is not None and kept[0] is decision:
            return kept[1]
        pairs = dict.fromkeys((f.policy, f.action) for f in decision.findings)
        found = tuple(self.policy_requests.labels(policy, action) for policy, action in pairs)
        if len(self._by_decision) >= _DECISIONS_KEPT:
            self._by_decision.clear()
        self._by_decision[id(decision)] = (decision, found)  # held: its id is not reused meanwhile
        return found

    def observe_facts(self, endpoint: str, outcome: str) -> None:
        """One answered facts API request (`operator.webhook.facts`)."""
        self.facts_requests.labels(endpoint, outcome).inc()

    def observe_audit(
        self,
        seconds: float,
        images: Mapping[tuple[str, str, str, str], int],
        violations: Mapping[tuple[str, str, str], int],
        workloads: Mapping[str, int],
        eol_workloads: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """One completed audit: its duration, and what it found (replacing what the last one found)."""
        self.audit_duration.observe(seconds)
        by_labels: tuple[tuple[Gauge, Mapping[Any, int]], ...] = (
            (self.audit_images, images),
            (self.audit_violations, violations),
            (self.audit_workloads, workloads),
            (self.audit_eol_workloads, eol_workloads or {}),
        )
        for gauge, values in by_labels:
            gauge.clear()
            for labels, count in values.items():
                gauge.labels(*((labels,) if isinstance(labels, str) else labels)).set(count)
        self.audit_completed()

    def audit_completed(self, when: float | None = None) -> None:
        """Record that a cluster audit completed at `when` (Unix time; now when None)."""
        self.audit_completed_at.set(time.time() if when is None else when)

    # ------------------------------------------------------------------ sources read at scrape time

    def track_cache(self, cache: FactsCache) -> None:
        """Export `cache`'s hits and misses, summed with the other tracked caches (each counted once).

        A short-lived cache (a resolver per namespace's pull secrets) must be untracked when it is dropped:
        it is referenced until then.
        """
        if all(c is not cache for c in self._caches.caches):
            self._caches.caches.append(cache)

    def untrack_cache(self, cache: FactsCache) -> None:
        """Stop reading `cache`; its counts so far stay in the sums (counters never go down)."""
        kept = [c for c in self._caches.caches if c is not cache]
        if len(kept) != len(self._caches.caches):
            self._caches.retired.update(dict(cache.stats))
            self._caches.caches = kept

    def track_registry(self, source: RegistryClient | RegistryStats) -> None:
        """Export a registry client's requests and bytes, summed with the others tracked.

        Clients that share one `RegistryStats` (`RegistryClient(stats=...)`) are counted once: sharing is
        the simplest way to count short-lived clients (one per set of pull secrets) without tracking each.
        """
        stats = source.stats if isinstance(source, RegistryClient) else source
        if all(s is not stats for s in self._registries.stats):
            self._registries.stats.append(stats)

    def untrack_registry(self, source: RegistryClient | RegistryStats) -> None:
        """Stop reading a client's stats; its counts so far stay in the sums."""
        stats = source.stats if isinstance(source, RegistryClient) else source
        kept = [s for s in self._registries.stats if s is not stats]
        if len(kept) != len(self._registries.stats):
            self._registries.retired.requests.update(dict(stats.requests))
            self._registries.retired.received.update(dict(stats.received))
            self._registries.stats = kept

    def track_catalog(self, catalog: EolCatalog | Callable[[], EolCatalog]) -> None:
        """Export the age of the EOL catalog in use; pass a callable when the catalog is replaced on
        refresh, so that each scrape reads the current one.
        """
        current = catalog if callable(catalog) else (lambda: catalog)
        self.catalog_age.set_function(lambda: float(current().age_days(self._today())))

    def track_exceptions(
        self, ending_within: Callable[[float], int], ends: Callable[[], Iterable[ExceptionEnd]] | None = None
    ) -> None:
        """Export how many exceptions in force end within EXCEPTIONS_ENDING_DAYS, read when scraped
        (`ending_within(days)`: the count at the operator's clock), and, given `ends`, when each of them
        ends (`distroguard_exception_end_timestamp_seconds`: alerts choose their own horizon)."""
        self.exceptions_ending.set_function(lambda: float(ending_within(EXCEPTIONS_ENDING_DAYS)))
        self._exception_ends.source = ends

    # ------------------------------------------------------------------ exposition

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of a scrape: the Prometheus text format, or OpenMetrics when asked for."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def app(self) -> web.Application:
        """The aiohttp application: `GET /metrics` and `GET /healthz`."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", _handle_healthz)
        return app

    async def serve(self, addr: str, port: int) -> MetricsServer:
        """Listen on `addr`:`port` (0 for any free port) on this event loop, until `stop()`."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, addr, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = next((int(a[1]) for a in runner.addresses if isinstance(a, tuple)), port)
        return MetricsServer(runner, bound)

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.render(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})


async def _handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
