"""Image references (`[registry/]repository[:tag][@digest]`), parsed and normalised.

The grammar is the one Docker, containerd and Kubernetes share (the distribution project's reference
package), and names are normalised as Docker does: `python` is `docker.io/library/python:latest`.
Parsing peels the reference from the right (digest, then tag, then registry and repository) so that
each part is checked on its own and an error can say which part is wrong and what it may contain.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict

from distroguard.errors import InvalidReference

DOCKER_HUB = "docker.io"
# The legacy index name and the host that really serves Docker Hub's API are the same registry;
# one spelling keeps cache keys and policy matches from splitting on the alias.
_DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", "registry-1.docker.io"})
_OFFICIAL_NAMESPACE = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255  # registry + "/" + repository, as the distribution registry limits it
TAG_MAX = 128

# Go's \w is ASCII-only; re.ASCII keeps Python's \w from admitting other scripts' letters.
_TAG = re.compile(r"\w[\w.-]*", re.ASCII)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*")
# Brackets hold only hex and colons: no zone IDs, no dotted IPv4 tail (as in distribution).
_IPV6_TEXT = re.compile(r"[a-fA-F0-9:]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DIGEST_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_HEX_DIGITS = {"sha256": 64, "sha512": 128}
# Bare 64 hex digits are an image ID; Docker refuses them as names so the two are never confused.
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")

LOCAL_IMAGE_PREFIXES = ("oci:", "docker-archive:")
"""How a reference to an image on this machine's disk starts: an OCI layout or a `docker save` tarball."""

_HOST_HELP = "a host is letters, digits and '-' in dot-separated labels, or an IPv6 address in brackets"
_COMPONENT_HELP = (
    "components are lowercase letters and digits, joined by '.', '_', '__' or dashes, "
    "and may not start or end with a separator"
)


def is_local_image(image: str) -> bool:
    """Whether `image` names an image on this machine's disk (`oci:PATH` or `docker-archive:PATH`), not a
    registry reference: it is read from files, has no registry (so no credentials) and no cache entry."""
    return image.startswith(LOCAL_IMAGE_PREFIXES)


class _PartError(Exception):
    """What is wrong with one part; `parse` turns it into InvalidReference for the whole text."""


class ImageRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalise `text`; raise InvalidReference saying what is wrong."""
        try:
            registry, repository, tag, digest = _split(text)
        except _PartError as problem:
            raise InvalidReference(text, str(problem)) from None
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def lookup(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> ImageRef:
        return self.model_copy(update={"digest": digest})

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split(text: str) -> tuple[str, str, str | None, str | None]:
    if not text:
        raise _PartError("the reference is empty")
    if any(char.isspace() for char in text):
        raise _PartError("whitespace is not allowed anywhere in a reference")
    if _IMAGE_ID.fullmatch(text):
        raise _PartError("64 hex digits are an image ID, not a name; write name@sha256:<hex>")

    rest, at, digest = text.partition("@")
    if at:
        _check_digest(digest)
    # A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        _check_tag(tag)

    registry, repository = _split_name(rest)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = _OFFICIAL_NAMESPACE + repository
    length = len(registry) + 1 + len(repository)
    if length > NAME_MAX:
        raise _PartError(f"the name is {length} characters with its registry; at most {NAME_MAX} allowed")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return registry, repository, tag, digest if at else None


def _split_name(name: str) -> tuple[str, str]:
    """Registry and repository; the first component is a host only if it cannot be a path."""
    first, slash, remainder = name.partition("/")
    is_host = first == "localhost" or first.startswith("[") or "." in first or ":" in first
    if slash and is_host:
        _check_host(first)
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, name
    _check_repository(repository)
    return (DOCKER_HUB if registry in _DOCKER_HUB_ALIASES else registry), repository


def _check_host(host_port: str) -> None:
    if host_port.startswith("["):
        end = host_port.find("]")
        if end == -1:
            raise _PartError(f"registry host {host_port!r} has '[' without a closing ']'")
        host, after = host_port[: end + 1], host_port[end + 1 :]
        if not _is_ipv6(host[1:-1]):
            raise _PartError(f"registry host {host!r} is not an IPv6 address (no zone IDs)")
        if after and not after.startswith(":"):
            raise _PartError(f"unexpected {after!r} after registry host {host!r}; expected :port")
        port = after[1:] if after else None
    else:
        host, colon, port_text = host_port.partition(":")
        port = port_text if colon else None
        if not host:
            raise _PartError("the registry host is empty (an IPv6 address goes in brackets: [::1])")
        if not _DOMAIN.fullmatch(host):
            raise _PartError(f"invalid registry host {host!r}: {_HOST_HELP}")
    if port is not None and not (_PORT.fullmatch(port) and 0 < int(port) < 65536):
        raise _PartError(f"invalid port {port!r} in registry host: a port is a number 1-65535")


def _is_ipv6(address: str) -> bool:
    if not _IPV6_TEXT.fullmatch(address):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _check_repository(repository: str) -> None:
    if not repository:
        raise _PartError("the repository name is empty")
    if any("A" <= char <= "Z" for char in repository):
        raise _PartError(f"repository name must be lowercase, not {repository!r}")
    for component in repository.split("/"):
        if not component:
            raise _PartError(f"empty path component in {repository!r} (leading, trailing or '//')")
        if ":" in component:
            raise _PartError(f"unexpected ':' in {component!r}: ':' may only start the tag or a port")
        if not _PATH_COMPONENT.fullmatch(component):
            raise _PartError(f"invalid path component {component!r}: {_COMPONENT_HELP}")


def _check_tag(tag: str) -> None:
    if not tag:
        raise _PartError("nothing after ':': expected a tag")
    if len(tag) > TAG_MAX:
        raise _PartError(f"the tag is {len(tag)} characters; at most {TAG_MAX} allowed")
    if not _TAG.fullmatch(tag):
        raise _PartError(
            f"invalid tag {tag!r}: a tag is ASCII letters, digits, '_', '.' and '-', "
            "and may not start with '.' or '-'"
        )


def _check_digest(digest: str) -> None:
    if not digest:
        raise _PartError("nothing after '@': expected a digest such as sha256:<64 hex digits>")
    if "@" in digest:
        raise _PartError("more than one '@': a reference has at most one digest")
    algorithm, colon, encoded = digest.partition(":")
    if not (colon and _DIGEST_ALGORITHM.fullmatch(algorithm) and encoded):
        raise _PartError(f"malformed digest {digest!r}: expected algorithm:hex, e.g. sha256:<64 hex>")
    digits = _HEX_DIGITS.get(algorithm)
    if digits is None:
        raise _PartError(f"unsupported digest algorithm {algorithm!r}: sha256 or sha512 expected")
    if not _LOWER_HEX.fullmatch(encoded):
        raise _PartError(f"{algorithm} digest must be lowercase hex (0-9, a-f)")
    if len(encoded) != digits:
        raise _PartError(f"{algorithm} digest must have {digits} hex digits, not {len(encoded)}")
