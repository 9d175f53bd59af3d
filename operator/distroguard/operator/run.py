"""`distroguard run`: the admission controller process (kopf standalone, all namespaces).

`--role webhook` (the default) answers admission reviews; `--role audit` is the one writer of ImageFacts,
PolicyReports and Events (see `auditor`), with no webhook server; `--role all` does both in one process
(the default with `--dev`). Every role reads the cluster's ImageFacts into the shared resolver's cache at
start and follows them afterwards.

Production: the webhook server on TLS with the certificate and key from files (a mounted Secret, re-read
when they change); Helm owns the ValidatingWebhookConfiguration. `--dev`: for a local cluster and the
end-to-end tests, with nothing installed beforehand (see `devcluster` and `devcerts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click
import kopf
import kubernetes

from distroguard.eol import default_cache_path, load_catalog
from distroguard.errors import DistroguardError
from distroguard.metrics import Metrics
from distroguard.model.record import FactsRecord
from distroguard.operator import devcerts, devcluster
from distroguard.operator.admitter import Admitter
from distroguard.operator.auditor import Auditor, AuditSettings
from distroguard.operator.handlers import build_registry, load_cluster_policies
from distroguard.operator.inventorystore import InventoryStore, seed
from distroguard.operator.kubeclient import api_client, load_configuration
from distroguard.operator.namespaces import NamespaceLabels
from distroguard.operator.podwatch import PodWatch
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.pullsecrets import PullSecrets
from distroguard.operator.server import AdmissionServer
from distroguard.operator.settings import Role, RunSettings
from distroguard.policyfiles import load_policies
from distroguard.registry.client import RegistrySettings
from distroguard.registry.hosts import parse_mirrors
from distroguard.registry.meter import RegistryStats
from distroguard.resolver import CacheSettings, ResolverSettings
from distroguard.resolver.routing import ResolverPool

logger = logging.getLogger(__name__)


@click.command()
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), help="Like kubectl's.")
@click.option("--namespace", help="distroguard's own namespace (never validated).")
@click.option(
    "--policy-dir",
    "policy_dirs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Policy files or a directory of them, besides the cluster's DistroPolicy objects (repeatable).",
)
@click.option("--budget", type=float, default=3.0, show_default=True, help="Seconds to wait for image facts.")
@click.option("--timeout", type=int, default=10, show_default=True, help="The webhook's timeoutSeconds.")
@click.option(
    "--failure-ttl",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds a failed image lookup is answered from cache before the registry is asked again.",
)
@click.option("--listen", help="Address to serve on [default: 0.0.0.0; 127.0.0.1 with --dev].")
@click.option("--port", type=int, help="Port to serve on [default: 9443; a free one with --dev].")
@click.option(
    "--cert-file", type=click.Path(dir_okay=False, path_type=Path), help="Serving certificate (PEM)."
)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Its private key (PEM).")
@click.option(
    "--cert-check-interval",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds between checks of the certificate files for a renewal.",
)
@click.option("--insecure-registry", multiple=True, metavar="HOST", help="Plain HTTP to this registry.")
@click.option(
    "--registry-mirror",
    "registry_mirrors",
    multiple=True,
    metavar="SOURCE=MIRROR",
    help="Send requests for images on registry SOURCE (e.g. docker.io) to MIRROR (host[:port][/prefix]); "
    "the mirror's credentials are used (repeatable).",
)
@click.option(
    "--liveness",
    help="Liveness endpoint URL [default: http://0.0.0.0:8080/healthz; none with --dev].",
)
@click.option("--metrics-listen", help="Address of /metrics [default: 0.0.0.0; 127.0.0.1 with --dev].")
@click.option("--metrics-port", type=int, help="Port of /metrics [default: 9090; none with --dev].")
@click.option("--log-format", type=click.Choice(["json", "plain"]), default="json", show_default=True)
@click.option("--verbose", is_flag=True, help="Debug logs.")
@click.option(
    "--role",
    type=click.Choice(["webhook", "audit", "all"]),
    help="webhook: answer admission reviews; audit: the one writer of ImageFacts, PolicyReports and "
    "Events; all: both [default: webhook; all with --dev].",
)
@click.option(
    "--audit-interval", type=float, default=3600.0, show_default=True, help="Seconds between full audits."
)
@click.option(
    "--audit-debounce",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds an audit waits after a workload or policy change (changes meanwhile join it).",
)
@click.option(
    "--imagefacts-ttl",
    type=float,
    default=7.0,
    show_default=True,
    help="Days after which an ImageFacts object that no workload uses is deleted.",
)
@click.option(
    "--events/--no-events", default=True, show_default=True, help="Warning Events on violating workloads."
)
@click.option("--dev", is_flag=True, help="Install CRDs, generate certificates, register the webhook.")
@click.option("--webhook-name", default="distroguard", show_default=True, help="With --dev.")
def run(
    kubeconfig: Path | None,
    namespace: str | None,
    policy_dirs: tuple[Path, ...],
    budget: float,
    timeout: int,
    failure_ttl: float,
    listen: str | None,
    port: int | None,
    cert_file: Path | None,
    key_file: Path | None,
    cert_check_interval: float,
    insecure_registry: tuple[str, ...],
    registry_mirrors: tuple[str, ...],
    liveness: str | None,
    metrics_listen: str | None,
    metrics_port: int | None,
    log_format: str,
    verbose: bool,
    role: str | None,
    audit_interval: float,
    audit_debounce: float,
    imagefacts_ttl: float,
    events: bool,
    dev: bool,
    webhook_name: str,
) -> None:
    """Run the admission controller."""
    try:
        mirrors = parse_mirrors(registry_mirrors)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--registry-mirror") from None
    try:
        settings = RunSettings(
            kubeconfig=kubeconfig,
            namespace=namespace,
            policy_dirs=policy_dirs,
            budget=budget,
            timeout=timeout,
            failure_ttl=failure_ttl,
            listen=listen or ("127.0.0.1" if dev else "0.0.0.0"),
            port=port if port is not None else (0 if dev else 9443),
            cert_file=cert_file,
            key_file=key_file,
            cert_check_interval=cert_check_interval,
            insecure_registries=frozenset(insecure_registry),
            registry_mirrors=mirrors,
            liveness=liveness if liveness is not None or dev else "http://0.0.0.0:8080/healthz",
            metrics_listen=metrics_listen or ("127.0.0.1" if dev else "0.0.0.0"),
            metrics_port=metrics_port if metrics_port is not None or dev else 9090,
            dev=dev,
            webhook_name=webhook_name,
            role=cast(Role, role or ("all" if dev else "webhook")),
            audit=AuditSettings(
                interval=audit_interval,
                debounce=audit_debounce,
                facts_ttl=timedelta(days=imagefacts_ttl),
                events=events,
            ),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        policies = PolicyStore(load_policies(settings.policy_dirs) if settings.policy_dirs else ())
    except DistroguardError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy-dir") from None
    configure_logging(log_format, verbose=verbose)
    asyncio.run(operate(settings, policies))


def _known_facts(api: Any) -> list[FactsRecord]:
    """The cluster's ImageFacts records; none when the CRD is not installed (yet)."""
    try:
        return InventoryStore(api, ttl=timedelta(days=1), touch_interval=timedelta(hours=1)).records()
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        logger.warning("ImageFacts are not served by this cluster: every image is looked up")
        return []


HOT_PATH_LOGGERS = ("kopf.objects", "aiohttp.access")
"""Loggers that write an INFO line per request or per watched object (aiohttp's access log; kopf's
"Handler ... succeeded."): a tenth of a warm admission's time, and nothing the metrics do not say.
Warnings and errors still pass; --verbose shows everything."""


def configure_logging(log_format: str, *, verbose: bool) -> None:
    """kopf's log setup (JSON or plain lines on stderr), without the per-request INFO lines."""
    kopf.configure(
        verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL
    )
    for name in HOT_PATH_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


async def operate(settings: RunSettings, policies: PolicyStore) -> None:
    """The whole process, until kopf stops (SIGTERM, SIGINT); what was set up is undone in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        configuration = await asyncio.to_thread(load_configuration, settings.kubeconfig)
        api = api_client(configuration)
        stack.push_async_callback(asyncio.to_thread, api.close)
        loaded = load_catalog(default_cache_path())
        for warning in loaded.warnings:
            logger.warning("EOL catalog: %s", warning)
        metrics = Metrics()
        metrics.track_catalog(loaded.catalog)
        stats = RegistryStats()  # one set of registry counters, shared by every client of the pool
        metrics.track_registry(stats)
        pool = ResolverPool(
            RegistrySettings(
                insecure_registries=settings.insecure_registries, registry_mirrors=settings.registry_mirrors
            ),
            ttl=settings.pool_ttl,
            resolver_settings=ResolverSettings(cache=CacheSettings(failure_ttl=settings.failure_ttl)),
            stats=stats,
            tracker=metrics,
        )
        stack.push_async_callback(pool.close)
        await pool.start()
        if settings.metrics_port is not None:
            endpoint = await metrics.serve(settings.metrics_listen, settings.metrics_port)
            stack.push_async_callback(endpoint.stop)
            logger.info("metrics on %s:%d/metrics", settings.metrics_listen, endpoint.port)
        workdir = None
        if settings.dev:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="distroguard-dev-")))
            await asyncio.to_thread(devcluster.install_crds, api)
            # A configuration left behind would send the API server's requests to a closed port.
            stack.push_async_callback(
                asyncio.to_thread, devcluster.unregister_webhooks, api, settings.webhook_name
            )
        # What the audit already learnt (ImageFacts objects) answers this process's first lookups; the
        # watch keeps it up to date afterwards.
        known = await asyncio.to_thread(_known_facts, api)
        now = datetime.now(UTC)
        for record in known:
            seed(pool.anonymous, record, now)
        logger.info("%d ImageFacts read into the cache", sum(1 for r in known if r.access == "public"))
        secrets = PullSecrets(api, ttl=settings.secrets_ttl)
        admitter = None
        if settings.serves_webhook:
            admitter = Admitter(
                policies=policies,
                pool=pool,
                namespaces=NamespaceLabels(api, ttl=settings.namespace_ttl),
                secrets=secrets,
                catalog=loaded.catalog,
                budget=settings.budget,
                own_namespace=settings.namespace,
                observer=metrics,
            )
        auditor = None
        if settings.audits:
            auditor = Auditor(
                api,
                pool=pool,
                secrets=secrets,
                policies=policies,
                catalog=loaded.catalog,
                settings=settings.audit,
                observer=metrics,
            )
            # The first audit must see the cluster's policies, not whatever the watch delivered so far.
            await asyncio.to_thread(load_cluster_policies, api, policies)
            task = asyncio.create_task(auditor.serve(), name="distroguard audit")
            stack.push_async_callback(_cancel, task)
            loop = asyncio.get_running_loop()
            pods = PodWatch(api, lambda: _call_soon(loop, auditor.poke))
            pods.start()
            stack.callback(pods.stop)
        settle_heap()
        operator_settings = kopf.OperatorSettings()
        operator_settings.posting.enabled = False  # no Kubernetes events for log lines: nothing to tell
        if admitter is not None:
            operator_settings.admission.server = _server(settings, api, workdir, admitter)
        operator_settings.admission.managed = None  # production: Helm's; --dev: ours (see devcluster)
        await kopf.operator(
            registry=build_registry(
                configuration,
                policies,
                shared_cache=pool.anonymous,
                auditor=auditor,
            ),
            settings=operator_settings,
            standalone=True,
            clusterwide=True,
            liveness_endpoint=settings.liveness,
        )


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """`callback` on the loop's thread, from another thread."""
    loop.call_soon_threadsafe(callback)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


GC_THRESHOLDS = (20_000, 20, 20)
"""Collections of the youngest generation after this many new objects (Python's default: 700). A warm
admission allocates thousands of short-lived objects (the parsed and the decoded review, the decision),
so that at the default every few requests pay for a collection, and objects of requests in flight survive
into the older generations, whose full collections then walk the whole heap."""


def settle_heap() -> None:
    """Once set up: what start-up built (modules, kopf, the EOL catalog, caches' first entries) lives for
    the whole process, so it goes into the permanent generation that no collection walks (`gc.freeze`);
    and the youngest generation is collected less often (`GC_THRESHOLDS`). Measured with the admission
    benchmark: full collections of ~0.1 s each were the largest share of a warm admission's time and of
    its p99 latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _server(settings: RunSettings, api: Any, workdir: Path | None, admitter: Admitter) -> AdmissionServer:
    if workdir is None:
        return AdmissionServer(
            handler=admitter,
            addr=settings.listen,
            port=settings.port,
            certfile=settings.cert_file,
            pkeyfile=settings.key_file,
            file_check_interval=settings.cert_check_interval,
        )
    certs = devcerts.generate(workdir)
    ca_bundle = certs.ca_file.read_bytes()

    async def register(client_config: dict[str, Any]) -> None:
        body = devcluster.webhook_configuration(
            settings.webhook_name,
            client_config["url"],
            ca_bundle,
            timeout=settings.timeout,
            own_namespace=settings.namespace,
        )
        await asyncio.to_thread(devcluster.register_webhooks, api, body)

    return AdmissionServer(
        handler=admitter,
        addr=settings.listen,
        port=settings.port or _free_port(settings.listen),
        host=settings.listen,
        certfile=certs.cert_file,
        pkeyfile=certs.key_file,
        cafile=certs.ca_file,
        file_check_interval=settings.cert_check_interval,
        on_client_config=register,
    )


def _free_port(address: str) -> int:
    """A free port on `address` (kopf's own choice binds every interface to find one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
