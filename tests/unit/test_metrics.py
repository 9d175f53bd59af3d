"""Metrics: values after observations, the cache and registry collectors, and /metrics over HTTP."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import (
    AuthenticationError,
    DeadlineExceeded,
    NotFoundError,
    RegistryUnavailable,
    SourceError,
    reason_of,
)
from distroguard.model import Action, Decision, Finding, ImageRef
from distroguard.operator import metrics as metrics_module
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.catalogstore import spec_document
from distroguard.operator.metrics import ADMISSION_BUCKETS, Metrics
from distroguard.registry.client import RegistryClient
from distroguard.registry.manifest import Descriptor
from distroguard.registry.meter import RegistryStats
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver import Resolver
from distroguard.resolver.cache import FactsCache
from support.distros import DEBIAN_12_ROOT
from support.images import ImageBuilder, push
from support.registry_server import RegistryServer, free_port


def _finding(policy: str, action: Action, container: str = "app") -> Finding:
    return Finding(
        policy=policy,
        rule="libc",
        action=action,
        severity="high",
        reason="libc-denied",
        message=f"{container}: musl",
        container=container,
        image="alpine:3.20",
    )


# ---------------------------------------------------------------------- admission


def test_admission_latency_requests_and_policies() -> None:
    metrics = Metrics(process=False)
    value = metrics.registry.get_sample_value
    decision = Decision(
        verdict="deny",
        findings=(
            _finding("no-musl", "deny", "app"),
            _finding("no-musl", "deny", "sidecar"),  # same policy and action: one request
            _finding("no-eol", "warn"),
        ),
    )
    metrics.observe_admission("deny", 0.004, decision)
    metrics.observe_admission("allow", 0.0005, Decision(verdict="allow"))
    metrics.observe_admission("allow", 2.0, None)

    assert value("distroguard_admission_requests_total", {"verdict": "deny"}) == 1
    assert value("distroguard_admission_requests_total", {"verdict": "allow"}) == 2
    assert value("distroguard_admission_requests_total", {"verdict": "warn"}) == 0  # exists from the start
    assert value("distroguard_admission_duration_seconds_count", {"verdict": "allow"}) == 2
    assert value("distroguard_admission_duration_seconds_sum", {"verdict": "allow"}) == pytest.approx(2.0005)
    assert value("distroguard_admission_duration_seconds_bucket", {"verdict": "allow", "le": "0.001"}) == 1
    assert value("distroguard_admission_duration_seconds_bucket", {"verdict": "allow", "le": "2.5"}) == 2
    assert value("distroguard_admission_duration_seconds_bucket", {"verdict": "deny", "le": "0.005"}) == 1
    assert value("distroguard_admission_duration_seconds_bucket", {"verdict": "deny", "le": "0.0025"}) == 0
    assert value("distroguard_admission_policy_requests_total", {"policy": "no-musl", "action": "deny"}) == 1
    assert value("distroguard_admission_policy_requests_total", {"policy": "no-eol", "action": "warn"}) == 1
    metrics.observe_admission("deny", 0.004, decision)  # the memo's same decision, for an identical review
    assert value("distroguard_admission_policy_requests_total", {"policy": "no-musl", "action": "deny"}) == 2
    assert value("distroguard_admission_policy_requests_total", {"policy": "no-eol", "action": "warn"}) == 2
    assert (
        value("distroguard_admission_policy_requests_total", {"policy": "no-eol", "action": "deny"}) is None
    )


def test_buckets_span_a_millisecond_to_the_webhook_timeout() -> None:
    assert ADMISSION_BUCKETS[0] == 0.001
    assert ADMISSION_BUCKETS[-1] == 10.0
    assert list(ADMISSION_BUCKETS) == sorted(ADMISSION_BUCKETS)


def test_unresolved_images_by_reason() -> None:
    metrics = Metrics(process=False)

    def unresolved(reason: str) -> float | None:
        return metrics.registry.get_sample_value("distroguard_unresolved_images_total", {"reason": reason})

    # the two expected reasons exist from the start
    assert (unresolved("deadline-exceeded"), unresolved("registry-unavailable")) == (0, 0)
    metrics.observe_admission(
        "warn", 3.0, None, unresolved={"deadline-exceeded": 2, "registry-unavailable": 1, "unauthorized": 1}
    )
    metrics.observe_admission("allow", 0.1, None, unresolved=1)  # reason unknown
    metrics.observe_admission("allow", 0.1, None)
    reasons = ("deadline-exceeded", "registry-unavailable", "unauthorized", "error")
    assert [unresolved(r) for r in reasons] == [2, 1, 1, 1]


def test_the_reason_of_an_error_is_its_own() -> None:
    assert reason_of(DeadlineExceeded("img: not resolved within 3 s")) == "deadline-exceeded"
    assert reason_of(TimeoutError()) == "deadline-exceeded"
    assert reason_of(RegistryUnavailable("r.example", "HTTP 503")) == "registry-unavailable"
    assert reason_of(AuthenticationError("r.example", "unauthorized")) == "unauthorized"
    assert reason_of(NotFoundError("r.example", "not found")) == "not-found"
    assert reason_of(SourceError("bad layer")) == "source-error"
    assert reason_of(ValueError("bug")) == "error"


def test_instances_do_not_clash() -> None:
    first, second = Metrics(), Metrics()
    first.observe_admission("allow", 0.01)
    assert first.registry.get_sample_value("distroguard_admission_requests_total", {"verdict": "allow"}) == 1
    assert second.registry.get_sample_value("distroguard_admission_requests_total", {"verdict": "allow"}) == 0
    assert first.registry.get_sample_value("process_virtual_memory_bytes") is not None


def test_catalog_age_and_audit_time() -> None:
    catalog = EolCatalog(bundled_snapshot())
    today = catalog.snapshot + timedelta(days=12)
    metrics = Metrics(process=False, today=lambda: today)
    value = metrics.registry.get_sample_value
    age = value("distroguard_eol_catalog_age_days")
    assert age is not None
    assert math.isnan(age)
    metrics.track_catalog(catalog)
    assert value("distroguard_eol_catalog_age_days") == 12

    current = [catalog]
    metrics.track_catalog(lambda: current[0])
    today = catalog.snapshot + timedelta(days=40)
    assert value("distroguard_eol_catalog_age_days") == 40

    assert value("distroguard_audit_last_completed_timestamp_seconds") == 0
    metrics.audit_completed(1_700_000_000.0)
    assert value("distroguard_audit_last_completed_timestamp_seconds") == 1_700_000_000.0
    metrics.audit_completed()
    stamp = value("distroguard_audit_last_completed_timestamp_seconds")
    assert stamp is not None
    assert stamp > 1_700_000_000.0


def test_an_audit_replaces_what_the_last_one_found() -> None:
    metrics = Metrics(process=False)
    value = metrics.registry.get_sample_value
    metrics.observe_audit(
        2.0,
        {("debian", "10", "glibc", "eol"): 3},
        {("no-eol", "supported", "fail"): 2},
        {"deny": 2, "allow": 1},
        {("debian", "10"): 2, ("ubuntu", "18.04"): 1},
    )
    assert value("distroguard_audit_eol_workloads", {"os": "debian", "version": "10"}) == 2
    assert value("distroguard_audit_eol_workloads", {"os": "ubuntu", "version": "18.04"}) == 1
    assert (
        value(
            "distroguard_audit_images", {"os": "debian", "version": "10", "libc": "glibc", "eol_state": "eol"}
        )
        == 3
    )
    stamp = value("distroguard_audit_last_completed_timestamp_seconds")
    assert stamp is not None
    assert stamp > 0
    metrics.observe_audit(1.0, {}, {}, {"allow": 3}, {("debian", "10"): 1})
    assert value("distroguard_audit_eol_workloads", {"os": "debian", "version": "10"}) == 1
    assert value("distroguard_audit_eol_workloads", {"os": "ubuntu", "version": "18.04"}) is None
    assert value("distroguard_audit_duration_seconds_count") == 2


class _LateEveningInUtc(datetime):
    """23:30 UTC on 1 March 2027, already 2 March on the local clock (UTC+2) that a naive `now()` reads."""

    INSTANT = datetime(2027, 3, 1, 23, 30, tzinfo=UTC).timestamp()
    LOCAL = timezone(timedelta(hours=2))

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _LateEveningInUtc:
        if tz is not None:
            return cls.fromtimestamp(cls.INSTANT, tz)
        return cls.fromtimestamp(cls.INSTANT, cls.LOCAL).replace(tzinfo=None)


def test_catalog_age_uses_today_in_utc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "datetime", _LateEveningInUtc)
    catalog = EolCatalog(bundled_snapshot())
    metrics = Metrics(process=False)
    metrics.track_catalog(catalog)
    age = metrics.registry.get_sample_value("distroguard_eol_catalog_age_days")
    assert age == (date(2027, 3, 1) - catalog.snapshot).days


# ---------------------------------------------------------------------- cache


def test_cache_lookups_sum_the_tracked_caches() -> None:
    metrics = Metrics(process=False)
    one, two = FactsCache(), FactsCache()
    metrics.track_cache(one)
    metrics.track_cache(two)
    metrics.track_cache(one)  # tracked twice, counted once

    def lookups(tier: str, result: str) -> float | None:
        labels = {"tier": tier, "result": result}
        return metrics.registry.get_sample_value("distroguard_cache_lookups_total", labels)

    assert lookups("facts", "hit") == 0  # every tier and result exists from the start
    one.tags.put("r/app:1", "sha256:" + "a" * 64)
    assert one.tags.get("r/app:1") is not None
    assert one.tags.get("r/app:2") is None
    assert two.tags.get("r/app:1") is None
    two.facts.count(True)
    two.bases.count(False)
    two.failures.count(True)
    assert one.tags.peek("r/app:1") is not None  # uncounted

    assert lookups("tags", "hit") == 1
    assert lookups("tags", "miss") == 2
    assert lookups("facts", "hit") == 1
    assert lookups("bases", "miss") == 1
    assert lookups("failures", "hit") == 1
    assert lookups("failures", "miss") == 0

    metrics.untrack_cache(two)  # a retired resolver's counts stay, and stop changing
    metrics.untrack_cache(two)
    two.facts.count(True)
    assert lookups("facts", "hit") == 1
    assert lookups("tags", "miss") == 2


# ---------------------------------------------------------------------- registry


MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
BLOB = bytes(range(256)) * 1000
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
async def fake_registry() -> AsyncIterator[str]:
    """A tiny registry API on 127.0.0.1: one manifest, one blob, a 404 and a repository that answers 503."""

    async def manifest(request: web.Request) -> web.Response:
        if request.match_info["reference"] != "1":
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        headers = {"Docker-Content-Digest": MANIFEST_DIGEST}
        return web.Response(
            body=MANIFEST, content_type="application/vnd.oci.image.manifest.v1+json", headers=headers
        )

    async def blob(request: web.Request) -> web.Response:
        return web.Response(body=BLOB, content_type="application/octet-stream")

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("GET", "/v2/lib/app/manifests/{reference}", manifest)
    app.router.add_route("GET", "/v2/lib/app/blobs/{digest}", blob)
    app.router.add_route("GET", "/v2/lib/down/manifests/{reference}", unavailable)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_registry_requests_and_bytes_after_real_requests(fake_registry: str) -> None:
    metrics = Metrics(process=False)
    settings = RegistrySettings(max_retries=1, backoff_initial=0.01, backoff_max=0.02)
    shared = RegistryStats()
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with (
        RegistryClient(settings, stats=shared) as first,
        RegistryClient(settings, stats=shared) as second,
        RegistryClient(settings) as third,
    ):
        metrics.track_registry(first)
        metrics.track_registry(second)  # shares first's stats: counted once
        metrics.track_registry(third)
        app = ImageRef.parse(f"{fake_registry}/lib/app:1")
        _, body, digest = await first.get_manifest(app, "1")
        assert (body, digest) == (MANIFEST, MANIFEST_DIGEST)
        data = await second.read_blob(
            app, Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB)), max_bytes=1 << 20
        )
        assert data == BLOB
        with pytest.raises(NotFoundError):
            await third.get_manifest(app, "2")
        with pytest.raises(RegistryUnavailable):
            await third.get_manifest(ImageRef.parse(f"{fake_registry}/lib/down:1"), "1")
        with pytest.raises(RegistryUnavailable):
            await third.get_manifest(ImageRef.parse(f"{dead}/lib/app:1"), "1")

    def requests(registry: str, status: str) -> float | None:
        labels = {"registry": registry, "status": status}
        return metrics.registry.get_sample_value("distroguard_registry_requests_total", labels)

    assert requests(fake_registry, "2xx") == 2
    assert requests(fake_registry, "4xx") == 1
    assert requests(fake_registry, "5xx") == 2  # the first attempt and its one retry
    assert requests(dead, "error") == 2
    received = metrics.registry.get_sample_value(
        "distroguard_registry_received_bytes_total", {"registry": fake_registry}
    )
    assert received == len(MANIFEST) + len(BLOB)
    assert shared.requests[fake_registry, "2xx"] == 2
    assert third.stats.requests[fake_registry, "5xx"] == 2

    metrics.untrack_registry(third)
    third.stats.count_request(fake_registry, 500)
    assert requests(fake_registry, "5xx") == 2
    assert requests(dead, "error") == 2


@pytest.mark.registry
async def test_a_resolver_against_the_real_registry(registry: RegistryServer, repo: str) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    await push(registry.url, repo, "1", image)
    metrics = Metrics(process=False)
    async with RegistryClient() as client:
        resolver = Resolver(client)
        metrics.track_cache(resolver.cache)
        metrics.track_registry(client)
        reference = f"{registry.address}/{repo}:1"
        facts = await resolver.resolve(reference)
        assert await resolver.resolve(reference) == facts
        await resolver.drain()
    value = metrics.registry.get_sample_value

    assert value("distroguard_cache_lookups_total", {"tier": "tags", "result": "miss"}) == 1
    assert value("distroguard_cache_lookups_total", {"tier": "tags", "result": "hit"}) == 1
    assert value("distroguard_cache_lookups_total", {"tier": "facts", "result": "hit"}) == 1
    # GET of the tag's manifest (its digest from the bytes), the config and the base layer
    assert value("distroguard_registry_requests_total", {"registry": registry.address, "status": "2xx"}) == 3
    received = value("distroguard_registry_received_bytes_total", {"registry": registry.address})
    assert received == facts.bytes_fetched


# ---------------------------------------------------------------------- HTTP


async def test_metrics_served_over_http() -> None:
    metrics = Metrics()
    metrics.observe_admission(
        "warn", 0.02, Decision(verdict="warn", findings=(_finding("lts-only", "warn"),))
    )
    metrics.track_cache(FactsCache())
    server = await metrics.serve("127.0.0.1", 0)
    try:
        assert server.port > 0
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            async with session.get(
                f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            ) as response:
                assert response.headers["Content-Type"].startswith("application/openmetrics-text")
                assert (await response.text()).endswith("# EOF\n")
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert await response.text() == "ok\n"
            async with session.get(f"{base}/nothing") as response:
                assert response.status == 404
    finally:
        await server.stop()
        await server.stop()  # twice is harmless

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert 'distroguard_admission_requests_total{verdict="warn"} 1.0' in text
    assert families["distroguard_admission_duration_seconds"].type == "histogram"
    assert families["distroguard_cache_lookups"].type == "counter"
    assert "process_resident_memory_bytes" in families
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz"):
            pass


async def test_serve_fails_on_a_port_in_use() -> None:
    first = await Metrics(process=False).serve("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="in use"):
            await Metrics(process=False).serve("127.0.0.1", first.port)
    finally:
        await first.stop()


def test_the_catalog_age_follows_a_swap_of_the_cluster_catalog() -> None:
    fallback = EolCatalog(bundled_snapshot())
    holder = CatalogHolder(fallback)
    today = fallback.snapshot + timedelta(days=50)
    metrics = Metrics(process=False, today=lambda: today)
    metrics.track_catalog(holder.current)
    assert metrics.registry.get_sample_value("distroguard_eol_catalog_age_days") == 50
    fresher = bundled_snapshot().model_copy(update={"snapshot": today - timedelta(days=1)})
    holder.observe("MODIFIED", {"metadata": {"name": "default"}, "spec": spec_document(fresher)})
    assert metrics.registry.get_sample_value("distroguard_eol_catalog_age_days") == 1
