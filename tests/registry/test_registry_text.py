"""No text a registry controls reaches what people read: a canary in every field, header and body.

The stand-in (`support.canary_registry`) serves a well-formed image with the canary wherever distroguard
does not need it, and fails in every way a registry can (errors with bodies and reason phrases, redirects,
challenges, token responses, malformed manifests), each time with the canary in what it sends. The facts,
errors, admission answers, the audit's PolicyReports, Events and ImageFacts records, `inspect` and `check`
output and the metrics are searched for it, in any letter case.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from distroguard.admission import admit
from distroguard.admission.review import decode_document, respond
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.policyreports import (
    KNOWN_OS_IDS,
    OTHER,
    _stamp,
    results_of,
    tallies,
    workload_report,
    workload_results,
)
from distroguard.audit.results import AuditResult, audit_workloads, summarize
from distroguard.cli.main import main
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import DistroguardError, reason_of
from distroguard.model import Platform
from distroguard.model.decision import UNRESOLVED_RULE
from distroguard.model.facts import ImagePlatforms
from distroguard.model.record import EolState, RecordReference, platform_of, record_of
from distroguard.model.workloads import Container
from distroguard.operator.audit.events import notice_of
from distroguard.operator.metrics import CACHE_TIERS, Metrics
from distroguard.policyfiles import load_policies
from distroguard.registry.addresses import ClusterNetworks
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.meter import OTHER as OTHER_REGISTRY
from distroguard.registry.meter import WELL_KNOWN_REGISTRIES, RegistryStats
from distroguard.resolver import Resolver
from distroguard.resolver.fairness import ColdLookups, FairnessSettings
from distroguard.resolver.routing import ResolverPool
from support.admission import PoolCluster, StaticCluster
from support.canary_registry import CANARY, CanaryRegistry, leaks
from support.distros import DEBIAN_12_ROOT, os_release
from support.images import ImageBuilder, push
from support.kube import free_port
from support.registry_server import RegistryServer
from support.reviews import container, pod_spec, review, workload

pytestmark = pytest.mark.registry

ROOT = Path(__file__).resolve().parents[2]
#: Fast retries: the failures are the point, not the waiting.
SETTINGS = RegistrySettings(max_retries=1, backoff_initial=0.01, backoff_max=0.02, max_retry_after=0.05)
CATALOG = EolCatalog(bundled_snapshot())
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def canary() -> Iterator[CanaryRegistry]:
    with CanaryRegistry() as server:
        yield server


def policies(action: str) -> list:  # type: ignore[type-arg]
    found = load_policies([ROOT / "policies"])
    return [p.model_copy(update={"spec": p.spec.model_copy(update={"action": action})}) for p in found]


async def _outcomes(
    canary: CanaryRegistry, stats: RegistryStats
) -> dict[str, ImagePlatforms | DistroguardError]:
    """Each scenario resolved by a client of its own: a registry's challenge decides how its client asks
    for every later image, so sharing one would let one scenario's answers shape another's."""
    outcomes: dict[str, ImagePlatforms | DistroguardError] = {}
    for scenario in canary.scenarios:
        async with RegistryClient(SETTINGS, stats=stats) as client:
            try:
                outcomes[scenario] = await Resolver(client).resolve_platforms(
                    canary.ref(scenario), None, budget=30
                )
            except DistroguardError as exc:
                outcomes[scenario] = exc
    return outcomes


def _texts(outcome: ImagePlatforms | DistroguardError) -> list[str]:
    if isinstance(outcome, DistroguardError):
        return [str(outcome), repr(outcome), outcome.reason]
    return [repr(outcome.offered), *(f.model_dump_json() for f in outcome.facts)]


async def test_facts_and_errors_hold_no_registry_text(canary: CanaryRegistry) -> None:
    stats = RegistryStats()
    outcomes = await _outcomes(canary, stats)
    good = outcomes["good"]
    assert isinstance(good, ImagePlatforms), good
    assert good.offered == ("linux/amd64",)  # the entries with the canary's platforms run nowhere
    assert good.facts[0].os is not None
    assert good.facts[0].os.id == "debian"
    single = outcomes["single"]
    assert isinstance(single, ImagePlatforms), single
    nothing = outcomes["platforms"]
    assert isinstance(nothing, ImagePlatforms), nothing
    assert nothing.offered == ()  # an index whose platforms are the canary offers nothing to run
    failed = {s: o for s, o in outcomes.items() if isinstance(o, DistroguardError)}
    # A layer's media type is not needed (its bytes say how they are compressed): it resolves.
    assert set(failed) == set(canary.scenarios) - {"good", "single", "platforms", "layer-type"}
    # Each failure still says what went wrong, in our words.
    expected = {
        "media-type": "mediaType says unexpected value",
        "content-type": "unexpected value",
        "schema": "schemaVersion: expected 2, got unexpected value",
        "config-digest": "invalid digest, unexpected value",
        "not-found": "not found",
        "denied": "access denied",
        "unavailable": "HTTP 503",
        "teapot": "unexpected HTTP 418",
        "redirect-scheme": "redirect to an unusable URL, unexpected value",
        "redirect-http": "redirect to plain HTTP at another host refused",
        "redirect-loop": "more than 5 redirects",
        "challenge-scheme": "unsupported authentication (unexpected value",
        "challenge-realm": "token realm refused: it names a internal host",
        "challenge-realm-http": "token realm refused",
        "token-not-json": "the token response is not valid JSON",
        "token-no-token": "the token response has no token",
        "token-refused": "the token server refused a token for repository:token-refused:pull anonymously",
        "token-status": "token for repository:token-status:pull: HTTP 418",
        "range": "unusable Content-Range, unexpected value",
    }
    for scenario, words in expected.items():
        assert words in str(failed[scenario]), (scenario, str(failed[scenario]))
    texts = [text for outcome in outcomes.values() for text in _texts(outcome)]
    assert not leaks(texts)
    assert stats.requests  # the registry was asked


async def test_admission_answers_hold_no_registry_text(canary: CanaryRegistry) -> None:
    images = [canary.ref(s) for s in canary.scenarios]
    answers: list[str] = []
    async with RegistryClient(SETTINGS) as client:
        cluster = StaticCluster(Resolver(client))
        for action in ("deny", "warn"):
            for on_unresolved in ("deny", "warn", "allow"):
                chosen = [
                    p.model_copy(update={"spec": p.spec.model_copy(update={"on_unresolved": on_unresolved})})
                    for p in policies(action)
                ]
                for index in range(0, len(images), 5):  # a few containers per pod, as workloads have
                    spec = pod_spec(
                        *(container(f"c{i}", image) for i, image in enumerate(images[index : index + 5]))
                    )
                    request = decode_document(review(workload("Pod", spec)))
                    answer = await admit(request, cluster, chosen, CATALOG, budget=30, now=NOW)
                    answers.append(json.dumps(respond(request.uid, answer)))
    assert any("unexpected value" in a for a in answers)
    assert any("could not be inspected" in a or "not inspected" in a or "unresolved" in a for a in answers)
    assert not leaks(answers)


async def test_reports_events_and_image_facts_hold_no_registry_text(canary: CanaryRegistry) -> None:
    stats = RegistryStats()
    outcomes = await _outcomes(canary, stats)
    ref = WorkloadRef("shop", "Deployment", "web")
    containers = tuple(
        Container(name=f"c{i}", image=canary.ref(s), section="containers")
        for i, s in enumerate(canary.scenarios)
    )
    audited = AuditedWorkload(
        ref=ref, source="pods", containers=containers, pods=1, uid="u1", api_version="apps/v1"
    )
    summaries = {
        (ref, c.image): summarize(c.image, outcomes[scenario], CATALOG, NOW.date())
        for c, scenario in zip(containers, canary.scenarios, strict=True)
    }
    texts: list[str] = []
    for action in ("deny", "warn", "audit"):
        chosen = policies(action)
        results = audit_workloads([audited], summaries, chosen, CATALOG, NOW, {})
        for result in results:
            report = workload_report(result, workload_results(result, chosen, _stamp(NOW)))
            texts.append(json.dumps(report, default=str))
            notice = notice_of(result)
            texts.append(repr(notice))
    good = outcomes["good"]
    assert isinstance(good, ImagePlatforms)
    record = record_of(
        good.facts[0].digest or "",
        [(f, None) for f in good.facts],
        offers=(),
        single=good.single,
        references=(RecordReference(image=canary.ref("good"), digest=good.facts[0].digest, observed_at=NOW),),
        access="public",
        resolved_at=NOW,
        last_seen=NOW,
    )
    texts.append(record.model_dump_json())
    texts.append(platform_of(good.facts[0], None).model_dump_json())
    assert any("unexpected value" in t for t in texts)
    assert not leaks(texts)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.stdout + result.stderr


def test_inspect_and_check_show_no_registry_text(canary: CanaryRegistry) -> None:
    outputs: list[str] = []
    for scenario in canary.scenarios:  # one process each, as a pipeline runs them
        image = canary.ref(scenario)
        for output in ("table", "json"):
            outputs.append(_cli("inspect", "--output", output, image))
            outputs.append(_cli("check", "--policy", str(ROOT / "policies"), "--output", output, image))
    assert any("unexpected value" in o for o in outputs)
    assert any("debian" in o for o in outputs)
    assert not leaks(outputs)


async def test_metrics_hold_no_registry_text_and_only_a_fixed_set_of_labels(canary: CanaryRegistry) -> None:
    """Every metric family's label values after the canary's scenarios, counted as `distroguard run` counts:
    each from a fixed set (the registry label: well-known and configured registries, else `other`)."""
    stats = RegistryStats(known=WELL_KNOWN_REGISTRIES)
    await _outcomes(canary, stats)
    metrics = Metrics(process=False)
    metrics.track_registry(stats)
    async with RegistryClient(SETTINGS, stats=stats) as client:
        resolver = Resolver(client)
        metrics.track_cache(resolver.cache)
        chosen = policies("deny")
        for scenario in canary.scenarios:
            request = decode_document(
                review(workload("Pod", pod_spec(container("app", canary.ref(scenario)))))
            )
            answer = await admit(request, StaticCluster(resolver), chosen, CATALOG, budget=30, now=NOW)
            reasons = Counter(reason_of(e) for e in answer.unresolved)
            verdict = answer.decision.verdict if answer.decision else "error"
            metrics.observe_admission(verdict, 0.01, answer.decision, reasons)
    body, _ = metrics.render()
    text = body.decode()
    assert re.search(r'distroguard_unresolved_images_total\{reason="not-found"\}', text)
    assert not leaks([text])
    assert_bounded_labels(metrics, {p.name for p in chosen})


def assert_bounded_labels(
    metrics: Metrics, policy_names: set[str], rule_names: frozenset[str] = frozenset()
) -> None:
    """Each label value of each family is one of a fixed set (nothing an image or a registry chose)."""
    reasons = {cls.reason for cls in _error_classes(DistroguardError)}
    cycles = {cycle.cycle for product in CATALOG.data.products for cycle in product.cycles}
    allowed: dict[str, set[str]] = {
        "verdict": {"allow", "warn", "deny", "error"},
        "reason": reasons,
        "tier": set(CACHE_TIERS),
        "result": {"hit", "miss", "fail", "warn", "error", "pass", "skip"},
        "registry": set(WELL_KNOWN_REGISTRIES) | {OTHER_REGISTRY},
        "status": {"1xx", "2xx", "3xx", "4xx", "5xx", "error"},
        "policy": policy_names,
        "action": {"deny", "warn", "audit"},
        "rule": set(rule_names) | {UNRESOLVED_RULE},
        "os": set(KNOWN_OS_IDS) | {OTHER},
        "version": cycles | {""},
        "libc": {"glibc", "musl", "none", "unknown"},
        "eol_state": set(get_args(EolState)),
        "endpoint": {"gatekeeper", "facts"},
        "outcome": {"ok", "partial"} | reasons,
    }
    seen = 0
    for family in metrics.registry.collect():
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name in ("le", "quantile"):
                    continue
                assert name in allowed, (family.name, name)
                assert value in allowed[name], (family.name, name, value)
                seen += 1
    assert seen


def _error_classes(base: type[DistroguardError]) -> list[type[DistroguardError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _error_classes(sub)
    return found


def test_the_canary_is_found_where_it_is_put() -> None:
    """The search itself works: it finds the canary in any letter case."""
    assert leaks([f"x {CANARY.lower()} y"])
    assert leaks([CANARY.upper()])
    assert asyncio.iscoroutinefunction(_outcomes)
    assert Platform()  # the default platform the scenarios are judged on


# ------------------------------------------------------------------------------------ after a flood


async def test_metric_labels_stay_bounded_after_a_flood(
    canary: CanaryRegistry, registry: RegistryServer, repo: str
) -> None:
    """One namespace floods admission with unique images: on hosts that refuse connections, on addresses
    the cluster refuses, in repositories that do not exist, on the canary's scenarios, and images whose
    os-release says a new distribution and version each time (which the audit then counts). Every label of
    every family, admission, cache, registry and audit alike, is still from a fixed set."""
    flood = 60
    for n in range(flood // 6):
        said = os_release(f'ID="{CANARY}-{n}"\nVERSION_ID="{n}.{CANARY}"\n')
        weird = ImageBuilder().layer({**DEBIAN_12_ROOT, "/usr/lib/os-release": said})
        await push(registry.url, repo, f"w{n}", weird.build())
    closed = free_port()
    images = [
        image
        for n in range(flood // 6)
        for image in (
            f"127.0.0.1:{closed}/{CANARY.lower()}-{n}/app:{n}",  # refused connections: the host remembered
            f"169.254.{n}.{n + 1}/{CANARY.lower()}/app:{n}",  # link-local: refused before a connection
            f"10.96.0.{n + 1}/{CANARY.lower()}/app:{n}",  # the cluster's service network
            f"{registry.address}/{CANARY.lower()}-{n}/app:{n}",  # no such repository
            canary.ref(canary.scenarios[n % len(canary.scenarios)]),
            f"{registry.address}/{repo}:w{n}",  # resolves, to a distribution nobody knows
        )
    ]
    refused = ClusterNetworks()
    refused.learn("service network", [ipaddress.ip_network("10.96.0.0/12")])
    settings = dataclasses.replace(
        SETTINGS, registry_guard=True, registry_allow=("127.0.0.0/8",), refused_networks=refused
    )
    stats = RegistryStats(known=WELL_KNOWN_REGISTRIES)
    metrics = Metrics(process=False)
    metrics.track_registry(stats)
    pool = ResolverPool(settings, ttl=600, stats=stats, tracker=metrics)
    await pool.start()
    # Generous limits: the flood must reach the registries, not stop at the namespace's share.
    cluster = PoolCluster(pool, ColdLookups(FairnessSettings(concurrency=16, rate=1000, burst=1000)))
    chosen = policies("deny")
    outcomes: dict[str, ImagePlatforms | Exception] = {}
    try:
        for index in range(0, len(images), 3):
            batch = images[index : index + 3]
            spec = pod_spec(*(container(f"c{i}", image) for i, image in enumerate(batch)))
            request = decode_document(review(workload("Pod", spec), namespace="flood"))
            answer = await admit(request, cluster, chosen, CATALOG, budget=30, now=NOW)
            reasons = Counter(reason_of(e) for e in answer.unresolved)
            verdict = answer.decision.verdict if answer.decision else "error"
            metrics.observe_admission(verdict, 0.01, answer.decision, reasons)
        routed = pool.public
        for image in images:
            try:
                outcomes[image] = await routed.resolve_platforms(image, None, budget=30)
            except DistroguardError as exc:
                outcomes[image] = exc
    finally:
        await pool.close()
    assert {reason_of(e) for e in outcomes.values() if isinstance(e, DistroguardError)} >= {
        "registry-address-not-allowed",
        "registry-unavailable",
        "not-found",
    }
    # The audit's count of what runs: the flood's images as one workload's containers.
    ref = WorkloadRef("flood", "Deployment", "web")
    containers = tuple(
        Container(name=f"c{i}", image=image, section="containers") for i, image in enumerate(images)
    )
    audited = AuditedWorkload(
        ref=ref, source="pods", containers=containers, pods=1, uid="u1", api_version="apps/v1"
    )
    summaries = {
        (ref, c.image): summarize(c.image, outcomes[c.image], CATALOG, NOW.date()) for c in containers
    }
    results = audit_workloads([audited], summaries, chosen, CATALOG, NOW, {})
    audit = AuditResult(
        generated=NOW,
        context="test",
        namespace=None,
        policies=tuple(p.name for p in chosen),
        catalog_snapshot=CATALOG.snapshot,
        workloads=results,
        images=tuple(dict.fromkeys(summaries.values())),
    )
    found = tallies(audit, results_of(audit, chosen, NOW))
    metrics.observe_audit(1.0, found.images, found.violations, found.workloads)
    assert found.images[OTHER, "", "glibc", "unknown"] == flood // 6  # each new "distribution" once
    text = metrics.render()[0].decode()
    assert f'registry="{OTHER_REGISTRY}"' in text
    assert not leaks([text])
    rules = frozenset(rule.name for p in chosen for rule in p.spec.rules)
    assert_bounded_labels(metrics, {p.name for p in chosen}, rules)
    families = {family.name for family in metrics.registry.collect() if family.samples}
    assert {
        "distroguard_audit_images",
        "distroguard_audit_violations",
        "distroguard_registry_requests",
    } <= families
