"""The admission controller process that `distroguard run` starts (kopf standalone, all namespaces).

`operate` sets up what the roles share (the Kubernetes client, the EOL catalog, the metrics, the resolver
pool, the ImageFacts read into the cache), then what each role needs, and hands the rest to kopf:

- webhook: the `AdmissionServer` answers admission reviews through the `Admitter`;
- audit: the `Auditor`, the one writer of ImageFacts, PolicyReports and Events, run as a task, with the
  metadata-only pod watch poking it; and the `CatalogRefresher`, which keeps the cluster's EOLCatalog fresh
  from endoflife.date (unless `--eol-url ""`);
- all: both, in one process (the default with `--dev`).

Production: the webhook server on TLS with the certificate and key from files (a mounted Secret, re-read
when they change); Helm owns the ValidatingWebhookConfiguration. `--dev`: for a local cluster and the
end-to-end tests, with nothing installed beforehand (see `dev.cluster` and `dev.certs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kopf
import kubernetes

from distroguard.eol import bundled_snapshot, default_cache_path, load_catalog
from distroguard.eol.refresh import RefreshSettings
from distroguard.model.api import CATALOG_NAME, CATALOG_PLURAL, GROUP, VERSION
from distroguard.model.exception import ExceptionLimits
from distroguard.operator.audit.auditor import Auditor
from distroguard.operator.audit.podwatch import PodWatch
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.catalogrefresh import CatalogRefresher
from distroguard.operator.catalogstore import CatalogStore
from distroguard.operator.clock import FileClock, system_clock
from distroguard.operator.clusternetworks import LearntNetworks
from distroguard.operator.dev import certs as devcerts
from distroguard.operator.dev import cluster as devcluster
from distroguard.operator.exceptionstore import ExceptionStore
from distroguard.operator.factswatch import FactsWatch
from distroguard.operator.handlers import build_registry, load_cluster_exceptions, load_cluster_policies
from distroguard.operator.kubeclient import api_client, load_configuration
from distroguard.operator.metrics import Metrics
from distroguard.operator.nodeplatforms import FixedPlatforms, NodePlatforms
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.pullsecrets import PullSecrets
from distroguard.operator.settings import RunSettings
from distroguard.operator.webhook.admitter import Admitter
from distroguard.operator.webhook.controllers import ControllerTemplates
from distroguard.operator.webhook.facts import PATHS as FACTS_PATHS
from distroguard.operator.webhook.facts import FactsApi, FactsLimits
from distroguard.operator.webhook.factsserver import FactsServer, FactsTls
from distroguard.operator.webhook.namespaces import NamespaceLabels
from distroguard.operator.webhook.server import AdmissionServer
from distroguard.policy.exceptions import ExceptionTrust
from distroguard.registry.addresses import ClusterNetworks, parse_networks
from distroguard.registry.client import RegistrySettings
from distroguard.registry.meter import WELL_KNOWN_REGISTRIES, RegistryStats
from distroguard.resolver import CacheSettings, ResolverSettings
from distroguard.resolver.fairness import ColdLookups
from distroguard.resolver.routing import ResolverPool

logger = logging.getLogger(__name__)


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
        # The cluster's EOLCatalog, when there is one, replaces this fallback (now, and as the watch sees it
        # change).
        catalogs = CatalogHolder(loaded.catalog, max_age_days=settings.eol.max_age_days)
        logger.info("proxies: %s", settings.proxies.describe())
        for note in settings.proxies.notes:
            logger.warning("proxies: %s", note)
        metrics = Metrics()
        metrics.track_catalog(catalogs.current)
        # One set of registry counters, shared by every client of the pool, labelled by a fixed set of names.
        stats = RegistryStats(known=known_registries(settings))
        metrics.track_registry(stats)
        # The networks registry connections may not reach: --registry-deny's, and the cluster's own as the
        # watches learn them (before the first list, only the fixed kinds and --registry-deny are refused).
        refused = ClusterNetworks(parse_networks(settings.registry_deny, "--registry-deny"))
        networks = LearntNetworks(api, refused)
        networks.start()
        stack.callback(networks.stop)
        pool = ResolverPool(
            RegistrySettings(
                insecure_registries=settings.insecure_registries,
                registry_mirrors=settings.registry_mirrors,
                proxies=settings.proxies,
                registry_guard=True,
                registry_allow=settings.registry_allow,
                refused_networks=refused,
            ),
            ttl=settings.pool_ttl,
            resolver_settings=ResolverSettings(
                cache=CacheSettings(failure_ttl=settings.failure_ttl),
                max_runtime_bytes=settings.max_runtime_bytes,
            ),
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
        inventory = FactsWatch(api, pool.anonymous, asyncio.get_running_loop())
        inventory.start()
        stack.callback(inventory.stop)
        # The audit resolves every image it lists: it waits for what the inventory already knows. A webhook
        # replica answers meanwhile (an image not read yet is looked up, as any new image is).
        wait = FACTS_AUDIT_WAIT_SECONDS if settings.audits else FACTS_WEBHOOK_WAIT_SECONDS
        if not await asyncio.to_thread(inventory.wait_listed, wait):
            logger.info("ImageFacts: %d read so far; the rest are read while serving", inventory.public)
        await asyncio.to_thread(load_cluster_catalog, api, catalogs)
        stale = catalogs.stale(datetime.now(UTC).date())
        if stale is not None:
            logger.warning("EOL catalog: %s", stale)
        secrets = PullSecrets(api, ttl=settings.secrets_ttl)
        nodes = _node_platforms(settings, api)
        nodes.start()
        stack.callback(nodes.stop)
        clock = FileClock(settings.dev_clock) if settings.dev_clock is not None else system_clock
        exceptions = ExceptionStore(
            trust=ExceptionTrust(settings.exception_namespaces, settings.exception_admin_namespace),
            limits=ExceptionLimits(settings.exception_max_days),
            clock=clock,
        )
        metrics.track_exceptions(exceptions.ending_within, exceptions.ends)
        admitter = None
        if settings.serves_webhook:
            admitter = Admitter(
                policies=policies,
                pool=pool,
                namespaces=NamespaceLabels(api, ttl=settings.namespace_ttl),
                secrets=secrets,
                catalog=catalogs,
                budget=settings.budget,
                own_namespace=settings.namespace,
                nodes=nodes.current,
                observer=metrics,
                cold=ColdLookups(settings.cold_lookups),
                clock=clock,
                controllers=ControllerTemplates(api, ttl=settings.controller_ttl),
                exceptions=exceptions,
            )
        auditor = None
        if settings.audits:
            auditor = Auditor(
                api,
                pool=pool,
                secrets=secrets,
                policies=policies,
                catalog=catalogs,
                settings=settings.audit,
                observer=metrics,
                nodes=nodes,
                clock=clock,
                exceptions=exceptions,
            )
            # The first audit must see the cluster's policies, not whatever the watch delivered so far,
            # and its Nodes' platforms.
            await asyncio.to_thread(load_cluster_policies, api, policies)
            await asyncio.to_thread(load_cluster_exceptions, api, exceptions)
            if isinstance(nodes, NodePlatforms):
                await asyncio.to_thread(nodes.wait_listed, NODES_LISTED_SECONDS)
            task = asyncio.create_task(auditor.serve(), name="distroguard audit")
            stack.push_async_callback(_cancel, task)
            loop = asyncio.get_running_loop()
            pods = PodWatch(api, lambda: _call_soon(loop, auditor.poke))
            pods.start()
            stack.callback(pods.stop)
            if settings.eol.refreshes:
                # The API is reached as the registries are: through the proxy HTTPS_PROXY/NO_PROXY choose.
                fetch = RefreshSettings(
                    base_url=settings.eol.url, deadline=settings.eol.deadline, proxies=settings.proxies
                )
                refresher = CatalogRefresher(
                    CatalogStore(api), settings.eol, bundled=bundled_snapshot(), clock=clock, fetch=fetch
                )
                refreshing = asyncio.create_task(refresher.serve(), name="distroguard EOL refresh")
                stack.push_async_callback(_cancel, refreshing)
            else:
                logger.info(
                    'EOL refresh off (--eol-url ""): the cluster\'s EOLCatalog is pushed from outside'
                )
        facts_routes: list[Any] = []
        certs = None
        if admitter is not None:
            # One set of certificates for the webhook and the facts API: generated for --dev, else the files.
            certs = devcerts.generate(workdir) if workdir is not None else None
            if settings.facts.enabled:
                facts = FactsApi(
                    pool.anonymous,
                    catalogs.current,
                    budget=settings.facts_budget,
                    limits=FactsLimits(max_keys=settings.facts.max_keys),
                    cold=admitter.cold,
                    observer=metrics,
                    clock=clock,
                )
                if settings.facts.port is None:
                    facts_routes = facts.routes()
                    logger.info("facts API on the webhook's server: %s", ", ".join(FACTS_PATHS))
                else:
                    task = asyncio.create_task(
                        _facts_server(settings, facts, certs).serve(), name="distroguard facts API"
                    )
                    task.add_done_callback(_log_failure)
                    stack.push_async_callback(_cancel, task)
        settle_heap()

        async def stop_lookups() -> None:
            await pool.abort()
            await secrets.cancel()
            if admitter is not None:
                await admitter.namespaces.cancel()
                if admitter.controllers is not None:
                    await admitter.controllers.cancel()

        # kopf's documented way to name the process: its own guess asks for the login name (below).
        os.environ.setdefault("POD_ID", own_identity())
        operator_settings = kopf.OperatorSettings()
        operator_settings.posting.enabled = False  # no Kubernetes events for log lines: nothing to tell
        if admitter is not None:
            operator_settings.admission.server = _server(settings, api, certs, admitter, facts_routes)
        operator_settings.admission.managed = None  # production: Helm's; --dev: ours (see devcluster)
        await kopf.operator(
            registry=build_registry(
                configuration,
                policies,
                auditor=auditor,
                on_stop=stop_lookups,
                exceptions=exceptions,
                catalogs=catalogs,
            ),
            settings=operator_settings,
            standalone=True,
            clusterwide=True,
            liveness_endpoint=settings.liveness,
        )


def load_cluster_catalog(api: Any, catalogs: CatalogHolder) -> None:
    """Read the cluster's EOLCatalog into `catalogs` now, so the first review already uses it (blocking: run
    in a worker thread). None, no such kind served, or no right to read it (a chart's RBAC older than the
    image): the fallback stays, and the watch takes the object when it can."""
    try:
        body = kubernetes.client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, CATALOG_PLURAL, CATALOG_NAME
        )
    except kubernetes.client.ApiException as exc:
        if exc.status == 403:
            logger.warning("EOLCatalog %s may not be read (403): the fallback EOL data is used", CATALOG_NAME)
            return
        if exc.status != 404:
            raise
        logger.info("no EOLCatalog %s in the cluster (yet): the fallback EOL data is used", CATALOG_NAME)
        return
    catalogs.observe(None, cast(dict[str, Any], body))


def own_identity() -> str:
    """This process's name for kopf: the host name (a pod's name in the cluster) and the PID.

    Given to kopf (as POD_ID) because kopf's own guess asks for the user's login name, which does not
    exist for the image's numeric user (65532, no passwd entry, no USER variable): the process would
    die before it serves anything.
    """
    return f"{socket.gethostname()}/{os.getpid()}"


def known_registries(settings: RunSettings) -> frozenset[str]:
    """The registry names the metrics may show: the well-known ones and those the operator configured."""
    mirrors = {target.partition("/")[0] for target in settings.registry_mirrors.values()}
    allowed = {entry for entry in settings.registry_allow if "/" not in entry}
    return (
        WELL_KNOWN_REGISTRIES
        | mirrors
        | set(settings.registry_mirrors)
        | settings.insecure_registries
        | allowed
    )


NODES_LISTED_SECONDS = 10.0
"""How long the first audit waits for the Nodes to be listed (then it goes on: pods are judged on
linux/amd64 until they are)."""
FACTS_WEBHOOK_WAIT_SECONDS = 5.0
"""How long a webhook replica's start-up waits for the ImageFacts to be read (50,000 took 6 to 16 s on a
2-core machine, most of it the API server's; past the wait it answers, and looks up what it has not read
yet)."""
FACTS_AUDIT_WAIT_SECONDS = 600.0
"""How long the audit's start-up waits for them (its first audit would look every image up otherwise)."""


def _node_platforms(settings: RunSettings, api: Any) -> NodePlatforms | FixedPlatforms:
    """The platforms that matter: the fixed `--platforms` list, or the cluster's Nodes' (`auto`)."""
    if settings.platforms is not None:
        return FixedPlatforms(settings.platforms)
    return NodePlatforms(api)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """`callback` on the loop's thread, from another thread."""
    loop.call_soon_threadsafe(callback)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A task that should run until the process stops ended early: say why when it happens, not at exit."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped: %s", task.get_name(), task.exception(), exc_info=task.exception())


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


GC_THRESHOLDS = (2_000, 10, 10)
"""When the collector runs once start-up is frozen (see `settle_heap`): the youngest generation after 2,000
new objects (Python's default: 700), the middle one after 10 of those, the oldest after 10 of the middle
one's (and, as Python does, only once it has grown by a quarter).

A collection stops the event loop for as long as it takes to walk its generations, so each one must stay
small. A warm admission leaves no cyclic garbage (the objects of a review are freed by reference counting
when its answer is sent; measured with `gc.DEBUG_SAVEALL` over thousands of reviews); what remains is a
few objects per closed connection (asyncio's transport refers to itself through a bound method). What
makes collections run at all is allocation drift: connections opened (they live up to
`MAX_CONNECTION_AGE_SECONDS`) and reviews in flight. A young generation of 2,000 objects is walked in well
under a millisecond; at 20,000 (this module's earlier setting) a young collection also walked every review
in flight, and paused the loop for up to ~30 ms in the admission benchmark's closed loop."""


def settle_heap() -> None:
    """Once set up: what start-up built (modules, kopf, the EOL catalog, caches' first entries) lives for
    the whole process, so it goes into the permanent generation that no collection walks (`gc.freeze`);
    then the collector's thresholds (`GC_THRESHOLDS`). Without the freeze, each full collection walked
    the whole heap (~0.1 s each in the admission benchmark)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _facts_server(
    settings: RunSettings, facts: FactsApi, certs: devcerts.DevCertificates | None
) -> FactsServer:
    """The facts API's own listener (`--facts-port`), with the webhook's certificate."""
    cert_file = certs.cert_file if certs is not None else settings.cert_file
    key_file = certs.key_file if certs is not None else settings.key_file
    if cert_file is None or key_file is None:  # RunSettings requires them without --dev
        raise ValueError("the facts API needs the webhook's certificate and key")
    return FactsServer(
        facts,
        FactsTls(cert_file, key_file, settings.facts.client_ca),
        addr=settings.listen,
        port=settings.facts.port or 0,
        file_check_interval=settings.cert_check_interval,
    )


def _server(
    settings: RunSettings,
    api: Any,
    certs: devcerts.DevCertificates | None,
    admitter: Admitter,
    routes: list[Any],
) -> AdmissionServer:
    if certs is None:
        return AdmissionServer(
            handler=admitter,
            routes=routes,
            addr=settings.listen,
            port=settings.port,
            certfile=settings.cert_file,
            pkeyfile=settings.key_file,
            file_check_interval=settings.cert_check_interval,
        )
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
        routes=routes,
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
