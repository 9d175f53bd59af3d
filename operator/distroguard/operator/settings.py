"""How `distroguard run` behaves: one frozen dataclass, checked once when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distroguard.model import Platform
from distroguard.model.exception import DEFAULT_MAX_DAYS
from distroguard.operator.audit.auditor import AuditSettings
from distroguard.operator.catalogrefresh import EolSettings
from distroguard.proxies import ProxyEnvironment
from distroguard.registry.addresses import AccessPolicy, parse_networks
from distroguard.resolver.fairness import FairnessSettings

Role = Literal["webhook", "audit", "all"]


@dataclass(frozen=True, slots=True)
class FactsApiSettings:
    """The facts API for other policy engines (`operator.webhook.facts`), served by the webhook role."""

    enabled: bool = False
    """Off unless asked for: a new endpoint is opened by whoever installs, not by an upgrade."""
    port: int | None = None
    """None: on the webhook's server (its port and certificate); a port: on a listener of its own (the
    same certificate); 0 picks a free one (development)."""
    client_ca: Path | None = None
    """When set, clients must present a certificate signed by this CA (PEM); needs `port`: the webhook's
    own listener cannot ask for client certificates on some paths only."""
    max_keys: int = 100
    """Distinct image references one Gatekeeper request may ask for."""
    budget: float | None = None
    """Seconds one request waits for facts; None: the admission lookup budget. Keep it below the
    Provider's `timeout` (Gatekeeper's webhook itself times out after 3 s by default)."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    kubeconfig: Path | None = None
    """Kubeconfig file; None: in-cluster service account, else $KUBECONFIG or ~/.kube/config."""
    namespace: str | None = None
    """distroguard's own namespace: never validated, so a broken distroguard cannot block its repair."""
    policy_dirs: tuple[Path, ...] = ()
    """Policy files or directories, read once at start, beside the cluster's DistroPolicy objects."""
    budget: float = 3.0
    """Seconds one request may wait for image facts; must stay below `timeout`."""
    platforms: tuple[Platform, ...] | None = None
    """The platforms images are judged on; None (`auto`): those of the cluster's Nodes, as they change."""
    timeout: int = 10
    """The webhook's timeoutSeconds (the API server gives up after it)."""
    failure_ttl: float = 30.0
    """Seconds a failed image lookup is answered from cache before the next real attempt: long enough to
    spare a failing registry a request per admission, short enough that a retry soon sees it back."""
    listen: str = "0.0.0.0"
    """Address the webhook server listens on."""
    port: int = 9443
    """Port of the webhook server; 0 picks a free one (development)."""
    cert_file: Path | None = None
    """Serving certificate (PEM), e.g. from a mounted Secret; re-read when it changes."""
    key_file: Path | None = None
    """Its private key (PEM)."""
    cert_check_interval: float = 60.0
    """Seconds between checks of the certificate files for a renewal."""
    insecure_registries: frozenset[str] = field(default_factory=frozenset)
    """Registries spoken to over plain HTTP (loopback ones always are)."""
    cold_lookups: FairnessSettings = field(default_factory=FairnessSettings)
    """Each namespace's share of cold image lookups in admission (concurrency, rate, burst)."""
    registry_allow: tuple[str, ...] = ()
    """CIDRs, addresses and host names registry connections may reach although they are link-local,
    loopback, or in the cluster's service and pod networks (refused by default: whoever creates a pod
    chooses the registry)."""
    registry_deny: tuple[str, ...] = ()
    """CIDRs registry connections may not reach besides those refused by default, for clusters whose
    service and pod networks cannot be read from the API (`registry_allow` still opens parts of them)."""
    max_runtime_bytes: int = 256 * 1024 * 1024
    """Compressed layer bytes read past the layers that decide OS and libc, looking for a runtime the
    config does not announce, when a policy judges runtimes (`runtimes` scan mode)."""
    registry_mirrors: dict[str, str] = field(default_factory=dict)
    """Source registry -> mirror (`host[:port][/prefix]`), as `RegistrySettings.registry_mirrors`."""
    proxies: ProxyEnvironment = field(default_factory=ProxyEnvironment)
    """The forward proxies of registry (and EOL) requests, from HTTPS_PROXY, HTTP_PROXY and NO_PROXY."""
    liveness: str | None = None
    """kopf's liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz; None: none."""
    metrics_listen: str = "0.0.0.0"
    """Address of the Prometheus endpoint (/metrics)."""
    metrics_port: int | None = 9090
    """Its port; 0 picks a free one; None: no endpoint."""
    dev: bool = False
    """Development: install the CRDs, generate certificates, register the webhook configuration."""
    dev_clock: Path | None = None
    """With `dev`: a file holding the moment decisions are made at (`operator.clock.FileClock`), for tests
    that must see a date pass under a running process."""
    webhook_name: str = "distroguard"
    """Name of the ValidatingWebhookConfiguration registered with --dev."""
    namespace_ttl: float = 10.0
    """Seconds a namespace's labels are reused (an opt-out label applies within this time)."""
    secrets_ttl: float = 30.0
    """Seconds a namespace's image pull secrets are reused."""
    controller_ttl: float = 10.0
    """Seconds the images of a pod controller's template (a ReplicaSet's...) are reused: the replacement
    pods of one workload read it once; a template changed in place is seen within this time."""
    pool_ttl: float = 600.0
    """Seconds an idle per-namespace registry client is kept before it is closed."""
    role: Role = "webhook"
    """webhook: answer admission reviews (and read ImageFacts into the cache); audit: the one writer of
    ImageFacts, PolicyReports and Events (no webhook server); all: both, in one process."""
    audit: AuditSettings = field(default_factory=AuditSettings)
    exception_namespaces: tuple[str, ...] = ("*",)
    """Namespaces (names or globs) whose DistroPolicyExceptions are honoured, each for its own namespace;
    () honours none."""
    exception_admin_namespace: str | None = None
    """When set, only the DistroPolicyExceptions in this namespace are honoured, and they hold cluster-wide
    (Kyverno's `exceptionNamespace`); `exception_namespaces` must then be left as it is."""
    exception_max_days: int = DEFAULT_MAX_DAYS
    """How far ahead an exception's `expires` may be, checked when it is loaded."""
    eol: EolSettings = field(default_factory=EolSettings)
    """The cluster's EOL data: where the audit refreshes it from, how often, how old is too old."""
    facts: FactsApiSettings = field(default_factory=FactsApiSettings)
    """The facts API (Gatekeeper's external data provider, `GET /v1/facts`)."""

    @property
    def facts_budget(self) -> float:
        return self.facts.budget if self.facts.budget is not None else self.budget

    @property
    def serves_webhook(self) -> bool:
        return self.role in ("webhook", "all")

    @property
    def audits(self) -> bool:
        return self.role in ("audit", "all")

    def __post_init__(self) -> None:
        if self.budget <= 0:
            raise ValueError("the lookup budget must be positive")
        if not 1 <= self.timeout <= 30:
            raise ValueError("the webhook timeout must be between 1 and 30 seconds (the API server's range)")
        if self.budget >= self.timeout:
            raise ValueError(
                f"the lookup budget ({self.budget:g} s) must be below the webhook timeout ({self.timeout} s)"
            )
        if self.dev_clock is not None and not self.dev:
            raise ValueError("--dev-clock is for development only: give --dev too")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both a certificate file and a key file, or neither")
        if not self.dev and self.cert_file is None and self.serves_webhook:
            raise ValueError("a certificate and key are required (or --dev, which generates them)")
        AccessPolicy.parse(self.registry_allow)  # a bad entry fails at start, naming it
        parse_networks(self.registry_deny, "--registry-deny")
        if self.max_runtime_bytes < 0:
            raise ValueError("--max-runtime-bytes must not be negative")
        if self.failure_ttl <= 0:
            raise ValueError("the failure TTL must be positive")
        if self.cert_check_interval <= 0:
            raise ValueError("the certificate check interval must be positive")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.exception_admin_namespace is not None and self.exception_namespaces != ("*",):
            raise ValueError("give --exception-namespaces or --exception-admin-namespace, not both")
        if not 1 <= self.exception_max_days <= 3650:
            raise ValueError("--exception-max-days must be between 1 and 3650")
        audit = self.audit
        if audit.interval <= 0 or audit.debounce < 0:
            raise ValueError("the audit interval must be positive and its debounce not negative")
        if audit.facts_ttl.total_seconds() <= 0:
            raise ValueError("the ImageFacts TTL must be positive")
        self._check_facts()
        eol = self.eol
        if eol.interval <= 0 or eol.retry <= 0 or eol.deadline <= 0:
            raise ValueError("the EOL refresh interval, retry and deadline must be positive")
        if eol.max_age_days < 0:
            raise ValueError("the EOL data's maximum age must not be negative")
        if eol.url and not eol.url.startswith(("https://", "http://")):
            raise ValueError(f'--eol-url {eol.url!r} is not an http(s) URL ("" disables the refresh)')

    def _check_facts(self) -> None:
        facts = self.facts
        if facts.client_ca is not None and facts.port is None:
            raise ValueError(
                "--facts-client-ca needs --facts-port: client certificates are asked for on a port of its own"
            )
        if not facts.enabled:
            if facts.port is not None or facts.client_ca is not None:
                raise ValueError(
                    "--facts-port and --facts-client-ca configure the facts API: give --facts-api"
                )
            return
        if not self.serves_webhook:
            raise ValueError("the facts API is served by the webhook role: --role webhook or all")
        if facts.port is not None and not 0 <= facts.port <= 65535:
            raise ValueError(f"--facts-port {facts.port} is out of range")
        if facts.port is not None and facts.port != 0 and facts.port == self.port:
            raise ValueError("--facts-port must differ from --port (leave it out to share the webhook's)")
        if not 1 <= facts.max_keys <= 10_000:
            raise ValueError("--facts-max-keys must be between 1 and 10000")
        if facts.budget is not None and facts.budget <= 0:
            raise ValueError("--facts-budget must be positive")
