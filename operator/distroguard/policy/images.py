"""Image references as policy globs see them: normalised the way Docker does (`python:3.12` is
`docker.io/library/python:3.12`), so `docker.io/library/*` matches what people write.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True, slots=True)
class ImageName:
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """`docker.io/library/python`"""
        return f"{self.registry}/{self.path}"

    @property
    def full(self) -> str:
        """`docker.io/library/python:3.12@sha256:...`"""
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def official(self) -> str | None:
        """The Docker Official Image name (`python`), or None for any other repository."""
        if self.registry == DOCKER_HUB and self.path.startswith("library/"):
            return self.path.removeprefix("library/")
        return None


@lru_cache(maxsize=4096)
def parse_image(reference: str) -> ImageName:
    """Split a reference into registry, path, tag and digest; lenient, for matching and hints
    only."""
    name, _, digest = reference.strip().partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return ImageName(registry, path, tag or None, digest or None)


def image_matches(patterns: tuple[str, ...], reference: str) -> bool:
    """Whether a glob matches the normalised reference, its repository, or the reference as
    written."""
    image = parse_image(reference)
    candidates = (image.full, image.repository, reference)
    return any(fnmatchcase(text, pattern) for pattern in patterns for text in candidates)
