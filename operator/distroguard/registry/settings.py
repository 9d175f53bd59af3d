"""How the registry client behaves: timeouts, retries, limits, and which hosts may use plain
HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from distroguard import __version__
from distroguard.proxies import ProxyEnvironment
from distroguard.registry.addresses import ClusterNetworks
from distroguard.registry.hosts import canonical_registry, mirror_target


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    connect_timeout: float = 10.0
    """Seconds to open a connection (TCP and TLS)."""
    read_timeout: float = 30.0
    """Seconds without a byte from the server before a read fails (and is retried)."""
    request_timeout: float = 60.0
    """Seconds for one whole small request: a manifest, a token, a config blob (headers and
    body).
    """
    max_retries: int = 3
    """Retries after the first attempt, for 429, 5xx and connection failures."""
    backoff_initial: float = 0.25
    """First retry delay in seconds; it doubles each retry, with jitter, up to `backoff_max`."""
    backoff_max: float = 8.0
    """Longest delay between two attempts, Retry-After aside."""
    max_retry_after: float = 60.0
    """Longest `Retry-After` honoured; a longer one is waited only this long."""
    concurrency: int = 8
    """Requests in flight to one registry at once; an open blob stream holds one until it is
    closed.
    """
    keepalive: float = 50.0
    """Seconds an idle connection is kept for the next request to its host. A new connection costs TCP's
    handshake and TLS's, two or three round trips to a distant registry, on the cold path; kept below the
    60 s after which common servers and load balancers drop idle connections themselves.
    """
    insecure_registries: frozenset[str] = field(default_factory=frozenset)
    """Registries (`host` or `host:port`) spoken to over plain HTTP; every other one gets HTTPS."""
    plain_http_loopback: bool = True
    """Loopback registries (127.0.0.0/8, `localhost`, `[::1]`) use plain HTTP; False gives them
    HTTPS.
    """
    max_manifest_bytes: int = 4 * 1024 * 1024
    """Largest manifest or index body read."""
    max_redirects: int = 5
    """Redirect hops followed for one request (registries send blobs to storage this way)."""
    max_resumes: int = 3
    """Times a blob stream that dropped resumes with a Range request where it stopped."""
    token_margin: float = 10.0
    """Seconds before a bearer token's expiry at which it is no longer reused."""
    user_agent: str = f"distroguard/{__version__}"
    """`User-Agent` of every request (the package's own version: reading the installed distribution's
    metadata instead costs a command line a scan of site-packages at start)."""
    token_realm_hosts: frozenset[str] = field(default_factory=frozenset)
    """Internal hosts (`host` or `host:port`) a registry's bearer challenge may send us to for
    tokens. Otherwise a realm on a loopback, private, link-local or cluster-internal host (or the
    metadata service) is refused, unless the registry itself is in that same kind of network.
    """
    registry_mirrors: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Source registry → mirror (`host[:port][/prefix]`): every request for an image on the source
    goes to the mirror instead, for the same repository (behind the prefix, when there is one); there
    is no fallback to the source. Image references and facts keep the source's name. Credentials are
    those of the mirror's host (the source's are never sent to it); plain HTTP follows the usual rule
    for the mirror's host. Keys are folded like credential keys (`index.docker.io` is `docker.io`).
    """
    registry_guard: bool = False
    """Refuse connections (to registries, their redirects and token realms) to link-local addresses and the
    metadata service, loopback, and the networks of `refused_networks` (the cluster's service and pod
    networks), judged on the addresses names resolve to, unless `registry_allow` opens them. Other private
    addresses stay allowed (an on-premises registry). On in the cluster (`distroguard run`: whoever creates
    a pod chooses the registry); off on the command line, whose user chose the image."""
    registry_allow: tuple[str, ...] = ()
    """What `registry_guard` lets through: CIDRs (`10.20.0.0/16`), addresses, and host names (all the
    addresses a name resolves to)."""
    refused_networks: ClusterNetworks | None = field(default=None, compare=False, hash=False)
    """The networks `registry_guard` refuses besides the fixed kinds, shared by every client and kept up
    to date by whoever learns them (`operator.clusternetworks`); None: none."""
    proxies: ProxyEnvironment = field(default_factory=ProxyEnvironment)
    """The forward proxies requests go through (`proxies`: HTTPS_PROXY, HTTP_PROXY, NO_PROXY, read by the
    entry points; aiohttp's own `trust_env` is never used). Default: none, every registry reached directly.
    Through a proxy, the address guard judges the target's addresses as this process resolves them before
    the proxy is asked (`addresses.GuardedResolver.screen`), and credentials are refused on plain HTTP."""

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "request_timeout", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RegistrySettings.{name} must be positive")
        for name in (
            "max_retries",
            "max_redirects",
            "max_resumes",
            "backoff_initial",
            "token_margin",
            "keepalive",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"RegistrySettings.{name} must not be negative")
        if self.concurrency < 1 or self.max_manifest_bytes < 1:
            raise ValueError("RegistrySettings.concurrency and max_manifest_bytes must be at least 1")
        # Names are compared lowercased; store them that way once.
        for name in ("insecure_registries", "token_realm_hosts"):
            object.__setattr__(self, name, frozenset(h.lower() for h in getattr(self, name)))
        mirrors: dict[str, str] = {}
        for source, mirror in self.registry_mirrors.items():
            key = canonical_registry(source)
            if not key:
                raise ValueError(f"RegistrySettings.registry_mirrors: {source!r} is not a registry host")
            if key in mirrors:
                raise ValueError(f"RegistrySettings.registry_mirrors: {source!r} is given twice")
            try:
                mirrors[key] = mirror_target(mirror)
            except ValueError as exc:
                raise ValueError(f"RegistrySettings.registry_mirrors: {exc}") from None
        object.__setattr__(self, "registry_mirrors", mirrors)
