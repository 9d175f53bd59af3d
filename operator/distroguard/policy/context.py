"""What an evaluation is given besides the policies: the containers with their facts, and where they
run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType

from distroguard.model.facts import ImageFacts

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container of a workload and what is known about its image."""

    container: str
    image: str
    """The reference as the workload wrote it."""
    facts: ImageFacts | None = None
    unresolved: str = ""
    """Why `facts` is missing (deadline exceeded, registry unavailable...); shown in the message."""
    platform: str | None = None
    """The platform named in messages (`linux/arm64: Alpine Linux 3.20, musl 1.2.5`): set when a container
    is judged on several platforms whose answers differ; None keeps messages short."""
    no_platform: str = ""
    """Why none of the image's platforms is one that matters (`image offers only linux/arm64; the cluster's
    nodes are linux/amd64`): a finding of its own, decided by each policy's `onNoPlatform`. `facts`, when
    set beside it, are those of the one platform a single-platform image has."""


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Where the workload runs, and when. The clock is an input: evaluation never reads it."""

    now: datetime
    namespace: str | None = None
    """None outside a cluster (`distroguard check`): namespace criteria of `match` then hold, of
    `exclude` not."""
    namespace_labels: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)
    """Labels of the namespace, what `namespaceSelector` matches."""
    kind: str | None = None
    """The workload kind (Pod, Deployment...); None outside a cluster, like `namespace`."""
    today: date = field(init=False)

    def __post_init__(self) -> None:
        # EOL dates are days; an aware `now` is taken in UTC so every replica agrees on the day.
        now = self.now.astimezone(UTC) if self.now.tzinfo is not None else self.now
        object.__setattr__(self, "today", now.date())
