"""One image's scan: layers read bottom up into one tree, and the facts the detectors derive from it."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from distroguard.model import Evidence, Libc, OSRelease, Runtime
from distroguard.scan.layers import LayerScan, ScanLimits
from distroguard.scan.libc import detect_libc, libc_decided
from distroguard.scan.osrelease import detect_os
from distroguard.scan.runtimes import detect_runtimes
from distroguard.scan.tree import FileTree


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """What the layers read so far say; shared by every image built on the same layers."""

    os: OSRelease | None
    libc: Libc
    file_runtimes: tuple[Runtime, ...]
    evidence: tuple[Evidence, ...]
    layers_read: int


@dataclass(slots=True)
class ImageScan:
    limits: ScanLimits = field(default_factory=ScanLimits)
    tree: FileTree = field(default_factory=FileTree)
    layers_read: int = 0
    programs: tuple[str, ...] = ()
    """Where the image's program may be (`program_paths`): read for Go build information too."""

    def layer(self, digest: str, diff_id: str | None = None) -> LayerScan:
        """Begin the next layer up; the caller feeds it and closes it."""
        self.layers_read += 1
        return LayerScan(self.tree, digest, self.limits, diff_id, programs=frozenset(self.programs))

    def decided(self) -> bool:
        """Whether upper layers could only refine, not change, the answer (the fast mode's stop)."""
        os, _ = detect_os(self.tree)
        return os is not None and libc_decided(self.tree)

    def runtime_found(self) -> bool:
        """Whether the files read so far show a language runtime (`runtimes` mode's stop)."""
        runtimes, _ = detect_runtimes((), self.tree, self.programs)
        return bool(runtimes)

    def facts(self) -> LayerFacts:
        os, os_evidence = detect_os(self.tree)
        libc, libc_evidence = detect_libc(self.tree, os)
        runtimes, runtime_evidence = detect_runtimes((), self.tree, self.programs)
        return LayerFacts(
            os=os,
            libc=libc,
            file_runtimes=tuple(runtimes),
            evidence=(*os_evidence, *libc_evidence, *runtime_evidence),
            layers_read=self.layers_read,
        )


MAX_PROGRAM_PATHS = 8


def program_paths(
    entrypoint: Sequence[str], cmd: Sequence[str], env: Sequence[str], working_dir: str
) -> tuple[str, ...]:
    """Where the program the image runs may be: the first word of Entrypoint (else Cmd), absolute, relative
    to WorkingDir, or looked up in the Env's PATH (as the runtime does); none for a shell."""
    argv = entrypoint or cmd
    if not argv or not argv[0] or len(argv[0]) > 1024:
        return ()
    program = argv[0]
    if posixpath.basename(program) in _SHELLS:
        return ()
    if program.startswith("/"):
        return (posixpath.normpath(program),)
    if "/" in program:
        return (posixpath.normpath(posixpath.join("/", working_dir or "/", program)),)
    path = next((item.partition("=")[2] for item in reversed(env) if item.startswith("PATH=")), _DEFAULT_PATH)
    directories = [d for d in path.split(":") if d.startswith("/")][:MAX_PROGRAM_PATHS]
    return tuple(posixpath.normpath(posixpath.join(d, program)) for d in directories)


_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def with_config_runtimes(
    layer_facts: LayerFacts, env: Sequence[str]
) -> tuple[tuple[Runtime, ...], tuple[Evidence, ...]]:
    """Runtimes from the image config's Env, which win over what file names suggest."""
    runtimes, evidence = detect_runtimes(env, None)
    names = {r.name for r in runtimes}
    merged = [*runtimes, *(r for r in layer_facts.file_runtimes if r.name not in names)]
    kept_file_evidence = tuple(
        e
        for e in layer_facts.evidence
        if not (e.fact.startswith("runtime.") and e.fact.removeprefix("runtime.") in names)
    )
    return tuple(sorted(merged, key=lambda r: r.name)), (*kept_file_evidence, *evidence)
