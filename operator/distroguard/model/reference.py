"""Image references (`[registry/]repository[:tag][@digest]`), parsed and normalised."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from distroguard.errors import InvalidReference

DOCKER_HUB = "docker.io"


class ImageRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        raise InvalidReference(text, "parser not written yet")

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def lookup(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> ImageRef:
        return self.model_copy(update={"digest": digest})

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
