"""`distroguard run`: the options, checked into `RunSettings`, then the process (`operator.process`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import cast

import click

from distroguard.cli.proxies import PROXY_EPILOG, environment_proxies
from distroguard.eol.refresh import DEFAULT_BASE_URL
from distroguard.errors import DistroguardError
from distroguard.model import Platform
from distroguard.model.platform import parse_platforms
from distroguard.model.policy import parse_quantity
from distroguard.operator.audit.auditor import AuditSettings
from distroguard.operator.catalogrefresh import EolSettings
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.process import configure_logging, operate
from distroguard.operator.settings import FactsApiSettings, Role, RunSettings
from distroguard.policyfiles import load_policies
from distroguard.registry.hosts import parse_mirrors
from distroguard.resolver.fairness import FairnessSettings


@click.command(
    epilog=PROXY_EPILOG.format(
        what="registries; kopf's API connection is always direct, but the kubernetes client honours them "
        "too: keep the API server in NO_PROXY (the chart does)"
    )
)
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
    "--platforms",
    "platforms_text",
    default="auto",
    show_default=True,
    metavar="auto|LIST",
    help="The platforms images are judged on: auto, those of the cluster's Nodes (their kubernetes.io/os "
    "and kubernetes.io/arch labels, followed as Nodes come and go; linux/amd64 without Nodes), or a fixed "
    "comma-separated list such as linux/amd64,linux/arm64.",
)
@click.option(
    "--failure-ttl",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds a failed image lookup is answered from cache before the registry is asked again.",
)
@click.option(
    "--cold-lookups",
    type=int,
    default=8,
    show_default=True,
    help="Image lookups the cache cannot answer that one namespace may have under way at once.",
)
@click.option(
    "--cold-lookup-rate",
    type=float,
    default=10.0,
    show_default=True,
    help="Such lookups one namespace may start per second (more: the image is unresolved, onUnresolved "
    "decides).",
)
@click.option(
    "--cold-lookup-burst",
    type=int,
    default=50,
    show_default=True,
    help="Such lookups one namespace may start at once after a quiet spell.",
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
    "--max-runtime-bytes",
    default="256Mi",
    show_default=True,
    help="When a policy judges runtimes the config does not announce: compressed layer bytes read past "
    "the layers that decide OS and libc, looking for one (a quantity: 64Mi, 1Gi; 0: none).",
)
@click.option(
    "--registry-allow",
    "registry_allow",
    multiple=True,
    metavar="CIDR|HOST",
    help="Let registry connections reach this network, address or host although it is link-local, loopback "
    "or in the cluster's service or pod networks, which are refused by default (e.g. an in-cluster "
    "registry) (repeatable).",
)
@click.option(
    "--registry-deny",
    "registry_deny",
    multiple=True,
    metavar="CIDR",
    help="Refuse registry connections to this network too, e.g. the service and pod networks of a cluster "
    "whose API does not say them (ServiceCIDR objects, Node podCIDRs) (repeatable).",
)
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
@click.option(
    "--exception-namespaces",
    default="*",
    show_default=True,
    metavar="LIST",
    help="Comma-separated namespaces (names or globs) whose DistroPolicyExceptions are honoured, each for "
    "its own namespace; empty: none is.",
)
@click.option(
    "--exception-admin-namespace",
    metavar="NAMESPACE",
    help="Honour only the DistroPolicyExceptions in this namespace, cluster-wide (their match.namespaces "
    "say where); instead of --exception-namespaces.",
)
@click.option(
    "--exception-max-days",
    type=int,
    default=365,
    show_default=True,
    help="How far ahead an exception's expires may be; one further ahead is ignored, with the reason logged.",
)
@click.option(
    "--eol-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help='The audit keeps the cluster\'s EOLCatalog fresh from this endoflife.date site (or API v1 root); "" '
    "turns the refresh off (air-gapped: push it with `distroguard eol update --kubeconfig`).",
)
@click.option(
    "--eol-interval",
    type=float,
    default=24.0,
    show_default=True,
    help="Hours between refreshes of the EOL data (conditional requests: unchanged products cost a 304).",
)
@click.option(
    "--eol-max-age",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Days after which the EOL data in use is warned about (logs, the ClusterPolicyReport).",
)
@click.option(
    "--facts-api/--no-facts-api",
    default=False,
    show_default=True,
    help="Serve the facts API to other policy engines: Gatekeeper's external data provider (POST "
    "/v1/gatekeeper) and GET /v1/facts?image=REF (Kyverno); anonymous facts only, over TLS.",
)
@click.option(
    "--facts-port",
    type=int,
    help="Serve the facts API on this port of its own (same certificate) instead of the webhook's.",
)
@click.option(
    "--facts-client-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Require facts API clients to present a certificate signed by this CA (PEM), e.g. Gatekeeper's "
    "(needs --facts-port).",
)
@click.option(
    "--facts-max-keys",
    type=int,
    default=100,
    show_default=True,
    help="Distinct image references one Gatekeeper request may ask for.",
)
@click.option(
    "--facts-budget",
    type=float,
    help="Seconds a facts API request waits for facts [default: --budget]; keep it below Gatekeeper's "
    "Provider timeout.",
)
@click.option("--dev", is_flag=True, help="Install CRDs, generate certificates, register the webhook.")
@click.option("--webhook-name", default="distroguard", show_default=True, help="With --dev.")
@click.option(
    "--dev-clock",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --dev: decide at the moment written in this file (ISO 8601), re-read when it changes.",
)
def run(
    kubeconfig: Path | None,
    namespace: str | None,
    policy_dirs: tuple[Path, ...],
    budget: float,
    timeout: int,
    platforms_text: str,
    failure_ttl: float,
    cold_lookups: int,
    cold_lookup_rate: float,
    cold_lookup_burst: int,
    listen: str | None,
    port: int | None,
    cert_file: Path | None,
    key_file: Path | None,
    cert_check_interval: float,
    insecure_registry: tuple[str, ...],
    max_runtime_bytes: str,
    registry_allow: tuple[str, ...],
    registry_deny: tuple[str, ...],
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
    exception_namespaces: str,
    exception_admin_namespace: str | None,
    exception_max_days: int,
    eol_url: str,
    eol_interval: float,
    eol_max_age: int,
    facts_api: bool,
    facts_port: int | None,
    facts_client_ca: Path | None,
    facts_max_keys: int,
    facts_budget: float | None,
    dev: bool,
    webhook_name: str,
    dev_clock: Path | None,
) -> None:
    """Run the admission controller."""
    try:
        mirrors = parse_mirrors(registry_mirrors)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--registry-mirror") from None
    try:
        platforms = _platforms(platforms_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--platforms") from None
    try:
        settings = RunSettings(
            kubeconfig=kubeconfig,
            namespace=namespace,
            policy_dirs=policy_dirs,
            budget=budget,
            platforms=platforms,
            timeout=timeout,
            failure_ttl=failure_ttl,
            cold_lookups=FairnessSettings(
                concurrency=cold_lookups, rate=cold_lookup_rate, burst=cold_lookup_burst
            ),
            listen=listen or ("127.0.0.1" if dev else "0.0.0.0"),
            port=port if port is not None else (0 if dev else 9443),
            cert_file=cert_file,
            key_file=key_file,
            cert_check_interval=cert_check_interval,
            insecure_registries=frozenset(insecure_registry),
            max_runtime_bytes=_quantity(max_runtime_bytes, "--max-runtime-bytes"),
            registry_allow=registry_allow,
            registry_deny=registry_deny,
            registry_mirrors=mirrors,
            proxies=environment_proxies(warn=False),  # its notes go to the log
            liveness=liveness if liveness is not None or dev else "http://0.0.0.0:8080/healthz",
            metrics_listen=metrics_listen or ("127.0.0.1" if dev else "0.0.0.0"),
            metrics_port=metrics_port if metrics_port is not None or dev else 9090,
            dev=dev,
            webhook_name=webhook_name,
            dev_clock=dev_clock,
            role=cast(Role, role or ("all" if dev else "webhook")),
            exception_namespaces=tuple(n.strip() for n in exception_namespaces.split(",") if n.strip()),
            exception_admin_namespace=exception_admin_namespace or None,
            exception_max_days=exception_max_days,
            audit=AuditSettings(
                interval=audit_interval,
                debounce=audit_debounce,
                facts_ttl=timedelta(days=imagefacts_ttl),
                events=events,
            ),
            eol=EolSettings(url=eol_url.strip(), interval=eol_interval * 3600.0, max_age_days=eol_max_age),
            facts=FactsApiSettings(
                enabled=facts_api,
                port=facts_port,
                client_ca=facts_client_ca,
                max_keys=facts_max_keys,
                budget=facts_budget,
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


def _quantity(text: str, option: str) -> int:
    try:
        return parse_quantity(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _platforms(text: str) -> tuple[Platform, ...] | None:
    """`auto` (None: the Nodes') or a list; `all` means nothing to a cluster and is refused."""
    if text.strip().lower() == "auto":
        return None
    listed = parse_platforms(text)
    if listed is None:
        raise ValueError("expected auto or a list of platforms, not all")
    return listed
