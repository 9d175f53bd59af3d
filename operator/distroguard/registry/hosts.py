"""Registry names → where to connect and how: Docker Hub's API host, loopback, and the plain-HTTP
rule.

Every mapping from a registry *name* (as written in image references and credential files) to a
network
*endpoint* lives here, so that Docker Hub's aliases are known in exactly one place.
"""

from __future__ import annotations

import ipaddress

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
