"""One container under evaluation: its facts, and what is derived from them, computed at most once.

Several rules of several policies ask the same questions (which EOL cycle is this OS, how to name
it); `Subject` answers each lazily and remembers, so a rule that never asks costs nothing.
"""

from __future__ import annotations

from datetime import date

from distroguard.model.facts import ImageFacts, OSRelease, Runtime
from distroguard.model.lifecycle import LifecycleLookup, LifecycleMatch
from distroguard.policy.context import ContainerImage

# Alpine is musl-only: when the scan could not name the C library, the distribution still does.
_MUSL_DISTROS = frozenset({"alpine", "postmarketos"})


class Subject:
    __slots__ = (
        "_facts_text",
        "_os_match",
        "_os_matched",
        "catalog",
        "container",
        "facts",
        "image",
        "platform",
        "today",
    )

    def __init__(
        self, container: ContainerImage, facts: ImageFacts, catalog: LifecycleLookup, today: date
    ) -> None:
        self.container = container.container
        self.image = container.image
        self.platform = container.platform
        self.facts = facts
        self.catalog = catalog
        self.today = today
        self._os_match: LifecycleMatch | None = None
        self._os_matched = False
        self._facts_text: str | None = None

    @property
    def os(self) -> OSRelease | None:
        return self.facts.os

    def os_match(self) -> LifecycleMatch | None:
        """The EOL cycle of the image's OS; None when the image has no OS at all."""
        if not self._os_matched:
            self._os_match = None if self.facts.os is None else self.catalog.for_os(self.facts.os)
            self._os_matched = True
        return self._os_match

    def os_text(self) -> str:
        found = self.os_match()
        return "no OS" if found is None else found.subject

    def libc_family(self) -> str:
        """The C library family, inferred from the distribution when the scan could not tell."""
        family = self.facts.libc.family
        if family == "unknown" and self.facts.os is not None:
            os = self.facts.os
            if os.id in _MUSL_DISTROS or _MUSL_DISTROS.intersection(os.id_like):
                return "musl"
        return family

    def libc_text(self) -> str:
        libc = self.facts.libc
        family = self.libc_family()
        if family == "none":
            return "no C library"
        if family == "unknown":
            return "C library unknown"
        return f"{family} {libc.version}" if libc.version and family == libc.family else family

    def facts_text(self) -> str:
        """`Alpine Linux 3.9.6, musl 1.1.20`: what the message puts in parentheses after the
        image; `built on python:3.8-slim-buster, Debian 10 (buster), glibc 2.28` when its base is shown;
        `linux/arm64: Alpine Linux 3.9.6, musl 1.1.20` when the platform is to be named."""
        if self._facts_text is None:
            text = f"{self.os_text()}, {self.libc_text()}"
            base = self.facts.base
            # Only a base that is shown (verified, or known by its layers) names the image's origin.
            if base is not None and base.verified is True and base.reference != self.image:
                text = f"built on {base.reference}, {text}"
            self._facts_text = text if self.platform is None else f"{self.platform}: {text}"
        return self._facts_text

    def runtime_match(self, runtime: Runtime) -> LifecycleMatch:
        return self.catalog.for_runtime(runtime)
