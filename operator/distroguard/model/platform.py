"""The platform an image runs on: `os/architecture[/variant]`, as an OCI index entry names it."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

# Variants that mean "the default" for their architecture, so `linux/arm64` and `linux/arm64/v8` match.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


class Platform(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `os/arch[/variant]`; raise ValueError naming the problem."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/arm64/v8"
            )
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """Whether an index entry for `other` satisfies a request for `self`."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        default = _DEFAULT_VARIANTS.get(self.architecture)
        mine = self.variant or default
        theirs = other.variant or default
        return self.variant is None or mine == theirs

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


DEFAULT_PLATFORM = Platform()

MAX_PLATFORMS = 16
"""Platforms of one image judged at most (an index listing more is judged on its first 16 runnable entries,
in the order it lists them): each costs its own manifest, config and base layers."""


def parse_platforms(text: str) -> tuple[Platform, ...] | None:
    """`all` (None: every platform an image offers), one platform, or a comma-separated list of them, without
    repeats and in the order given; ValueError naming the problem."""
    if text.strip().lower() == "all":
        return None
    items = [part for part in (p.strip() for p in text.split(",")) if part]
    if not items:
        raise ValueError(f"invalid platform list {text!r}: expected all, or os/architecture[/variant],...")
    return tuple(dict.fromkeys(Platform.parse(item) for item in items))


def platforms_text(platforms: tuple[Platform, ...] | None) -> str:
    """The inverse of `parse_platforms`: `all`, or the platforms joined with commas."""
    return "all" if platforms is None else ",".join(str(p) for p in platforms)


OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
"""The labels the kubelet sets on its Node when it registers (there is no standard variant label, so a
Node's platform is an os/architecture pair: `linux/arm64` matches an image's `linux/arm64/v8`)."""


def node_platform(labels: Mapping[str, str]) -> Platform | None:
    """The platform a Node's labels name; None without both os and arch labels (or with odd values)."""
    os_name, arch = labels.get(OS_LABEL), labels.get(ARCH_LABEL)
    if not os_name or not arch:
        return None
    try:
        return Platform.parse(f"{os_name}/{arch}")
    except ValueError:
        return None
