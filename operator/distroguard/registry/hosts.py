"""Registry names → where to connect and how: Docker Hub's API host, loopback, the plain-HTTP
rule, and registry mirrors.

Every mapping from a registry *name* (as written in image references and credential files) to a
network
*endpoint* lives here, so that Docker Hub's aliases are known in exactly one place.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping

from distroguard.model.reference import DOCKER_HUB

#: Where Docker Hub's registry API is actually served.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
#: Names that all mean Docker Hub in references and in Docker's config.json.
DOCKER_HUB_ALIASES = frozenset(
    {DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST, "registry.hub.docker.com"}
)


def canonical_registry(name: str) -> str:
    """A registry name as credentials are keyed: scheme and path dropped, lowercased, Hub aliases
    folded.

    `https://index.docker.io/v1/` (the key `docker login` writes) and `docker.io` are the same
    registry.
    """
    text = name.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    host = text.split("/", 1)[0].lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def api_host(registry: str) -> str:
    """The `host[:port]` that serves `registry`'s API."""
    return DOCKER_HUB_API_HOST if canonical_registry(registry) == DOCKER_HUB else registry


def split_host(hostport: str) -> tuple[str, int | None]:
    """`host[:port]` or `[v6]:port` → (host without brackets, port or None)."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    return host.lower(), int(port) if port.isdigit() else None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: the only hosts plain HTTP is always allowed to."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allows_plain_http(hostport: str, insecure: frozenset[str], *, loopback: bool = True) -> bool:
    """Whether `hostport` may be spoken to without TLS: loopback (unless `loopback` is False), or a
    host named in `insecure` (as `host` or `host:port`, lowercased).
    """
    host, _ = split_host(hostport)
    if loopback and is_loopback(host):
        return True
    return hostport.lower() in insecure or host in insecure


#: Cloud metadata services: a token realm there would hand the node's cloud credentials to whoever
#: controls the registry's answers.
METADATA_HOSTS = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
#: Name suffixes that only resolve inside a cluster or a private network.
INTERNAL_SUFFIXES = (".svc", ".cluster.local", ".local", ".internal", ".localdomain", ".home.arpa")
#: Carrier-grade NAT space (RFC 6598): not "private" to `ipaddress`, yet pod and node networks use it.
_SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` as an address, including the legacy IPv4 forms resolvers still accept (`2852039166`,
    `169.254.43518`, `0xa9.0xfe.0xa9.0xfe`); no lookup is made.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not host or any(c not in "0123456789abcdefx." for c in host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` (no port, no brackets) as the address it spells, legacy IPv4 forms included, or None for a
    name; IPv4-mapped IPv6 addresses are their IPv4 address."""
    return _as_ip(host.rstrip(".").lower())


def host_class(host: str) -> str | None:
    """Which internal network `host` (a name or an address, no port) belongs to, judged from its
    text alone (nothing is resolved): "metadata", "loopback", "link-local" or "internal" (private
    ranges, cluster and site-local names), or None for a public name or address.

    Single-label names (`kubernetes`, `vault`) count as internal: cluster DNS search paths resolve
    them. A public name that resolves to an internal address is caught by `addresses.GuardedResolver`.
    """
    host = host.strip("[]").rstrip(".").lower()
    address = _as_ip(host)
    if address is not None:
        if address in METADATA_HOSTS:
            return "metadata"
        if address.is_loopback:
            return "loopback"
        if address.is_link_local:
            return "link-local"
        if (
            address.is_private
            or address.is_unspecified
            or address.is_reserved
            or address.is_multicast
            or address in _SHARED_SPACE
        ):
            return "internal"
        return None
    if host in METADATA_NAMES:
        return "metadata"
    if is_loopback(host):
        return "loopback"
    if "." not in host or host.endswith(INTERNAL_SUFFIXES):
        return "internal"
    return None


# ---------------------------------------------------------------------- registry mirrors

_MIRROR_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?"
)
# Repository path components, as image references spell them.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def mirror_target(text: str) -> str:
    """A mirror written as `host[:port][/prefix]`, checked and with its host lowercased.

    No scheme: plain HTTP follows the same rule as for any registry (loopback hosts, and hosts named
    as insecure registries). The prefix is a repository path (e.g. a Harbor proxy-cache project) put
    in front of every repository asked for.
    """
    value = text.strip()
    if "://" in value:
        raise ValueError(
            f"mirror {text!r}: give host[:port][/prefix] without a scheme "
            "(plain HTTP is for loopback hosts and --insecure-registry hosts)"
        )
    host, _, prefix = value.partition("/")
    if not _MIRROR_HOST.fullmatch(host):
        raise ValueError(f"mirror {text!r}: {host!r} is not a host[:port]")
    _, port = split_host(host)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"mirror {text!r}: port {port} is out of range")
    prefix = prefix.rstrip("/")
    if prefix and not all(_PATH_COMPONENT.fullmatch(part) for part in prefix.split("/")):
        raise ValueError(
            f"mirror {text!r}: the prefix {prefix!r} must be lowercase repository path components"
        )
    return f"{host.lower()}/{prefix}" if prefix else host.lower()


def parse_mirror(text: str) -> tuple[str, str]:
    """`SOURCE=MIRROR` → (the source registry as credentials are keyed, the checked mirror).

    `docker.io=mirror.example.com:5000` sends requests for Docker Hub images to the mirror;
    `docker.io=harbor.example.com/dockerhub-proxy` also puts `dockerhub-proxy/` in front of each
    repository (`library/python` is asked for as `dockerhub-proxy/library/python`).
    """
    source, sep, mirror = text.partition("=")
    source = source.strip()
    if not sep or not source or not mirror.strip():
        raise ValueError(f"{text!r}: expected SOURCE=MIRROR, e.g. docker.io=mirror.example.com:5000")
    if "/" in source or "://" in source or not _MIRROR_HOST.fullmatch(source):
        raise ValueError(f"{text!r}: the source {source!r} must be a registry host[:port]")
    return canonical_registry(source), mirror_target(mirror)


def parse_mirrors(values: Iterable[str]) -> dict[str, str]:
    """Repeated `SOURCE=MIRROR` options → source registry → mirror; the same pair twice is fine, two
    mirrors for one source are not."""
    mirrors: dict[str, str] = {}
    for value in values:
        source, mirror = parse_mirror(value)
        if mirrors.get(source, mirror) != mirror:
            raise ValueError(f"{source} is given two mirrors")
        mirrors[source] = mirror
    return mirrors


def mirrored(registry: str, repository: str, mirrors: Mapping[str, str]) -> tuple[str, str]:
    """Where requests for `registry`'s `repository` go: (registry, repository) to ask instead.

    Unchanged when `registry` has no mirror; otherwise the mirror's `host[:port]`, and the
    repository behind the mirror's prefix when it has one. `mirrors` is keyed by canonical source.
    """
    target = mirrors.get(canonical_registry(registry))
    if target is None:
        return registry, repository
    host, _, prefix = target.partition("/")
    return host, f"{prefix}/{repository}" if prefix else repository
