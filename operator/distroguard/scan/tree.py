"""The squashed view of an image's filesystem, as far as distroguard keeps it.

Only what can decide a fact is kept: the files that capture rules select (content bounded, or just their
presence), and every symlink, because a link anywhere may stand between a well-known path and its file.
Paths are resolved with chroot semantics: absolute link targets start at the image root, `..` stops at `/`,
and a chain longer than `MAX_SYMLINK_HOPS` (a loop, or a hostile chain) resolves to nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

# Linux gives up after 40 links (MAXSYMLINKS); an image root should never need more.
MAX_SYMLINK_HOPS = 40
# Linux's PATH_MAX: no longer path can be opened, however it was reached.
MAX_PATH_LENGTH = 4096
# Path components walked to resolve one path, links followed included (real ones take a few dozen);
# bounds the work of 40 hops through hostile targets of thousands of components each.
MAX_RESOLVE_STEPS = 1024


@dataclass(frozen=True, slots=True)
class FileNode:
    """A regular file. `content` is None when only the file's presence was kept."""

    content: bytes | None
    layer: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class LinkNode:
    target: str
    layer: str | None = None


Node = FileNode | LinkNode


@dataclass(frozen=True, slots=True)
class FileRead:
    """A file found through `RootView.read`: its resolved path, content and the layer it came from."""

    path: str
    content: bytes
    layer: str | None


class RootView(Protocol):
    """Read-only access to an image root; what the detectors see."""

    def read(self, path: str) -> FileRead | None:
        """The file's content, following symlinks; None when missing, not captured, or a loop."""

    def exists(self, path: str) -> bool:
        """Whether a regular file is at `path` (after following symlinks), captured or not."""

    def listdir(self, path: str) -> list[str]:
        """Names of the kept entries directly in a directory, and of the directories that lead to kept
        entries (after following symlinks), sorted."""


def normalize(path: str) -> str:
    """`./etc//os-release/` → `/etc/os-release`; lexical only (no `..` handling: that needs the links)."""
    if path.startswith("./"):
        path = path[2:]
    # Tar paths are nearly always plain `etc/os-release`: one check, no split (this runs per entry).
    if path and path[0] not in "./" and path[-1] != "/" and "//" not in path and "/." not in path:
        return "/" + path
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class FileTree:
    """A mutable map of kept nodes by absolute path; implements `RootView`."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, set[str]] | None = None

    # -- building -------------------------------------------------------------------------------

    def put(self, path: str, node: Node) -> None:
        self._nodes[normalize(path)] = node
        self._children = None

    def put_file(self, path: str, content: bytes | None, layer: str | None = None) -> None:
        size = len(content) if content is not None else 0
        self.put(path, FileNode(content, layer, size))

    def put_symlink(self, path: str, target: str, layer: str | None = None) -> None:
        self.put(path, LinkNode(target, layer))

    def remove(self, path: str) -> None:
        """Remove the node at `path` and everything below it."""
        path = normalize(path)
        if path == "/":
            self.clear()
            return
        prefix = path + "/"
        doomed = [p for p in self._nodes if p == path or p.startswith(prefix)]
        for p in doomed:
            del self._nodes[p]
        if doomed:
            self._children = None

    def remove_below(self, path: str) -> None:
        """Remove everything below directory `path`, keeping `path` itself."""
        path = normalize(path)
        prefix = "/" if path == "/" else path + "/"
        doomed = [p for p in self._nodes if p.startswith(prefix)]
        for p in doomed:
            del self._nodes[p]
        if doomed:
            self._children = None

    def clear(self) -> None:
        self._nodes.clear()
        self._children = None

    def directories(self) -> set[str]:
        """Every directory that holds a kept node (so that replacing it hides something)."""
        dirs: set[str] = set()
        for path in self._nodes:
            parent = path.rpartition("/")[0]
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
        return dirs

    def get(self, path: str) -> Node | None:
        return self._nodes.get(normalize(path))

    def get_normalized(self, path: str) -> Node | None:
        """`get` for a path already in normal form (the streamer's hot path)."""
        return self._nodes.get(path)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and normalize(path) in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def kept_bytes(self) -> int:
        """Content bytes held (counted on each call: asked once per layer)."""
        return sum(len(n.content) for n in self._nodes.values() if isinstance(n, FileNode) and n.content)

    def items(self) -> Iterator[tuple[str, Node]]:
        return iter(self._nodes.items())

    # -- resolving ------------------------------------------------------------------------------

    def resolve(self, path: str, *, follow_last: bool = True) -> str | None:
        """The path with every symlink replaced by its target, chroot-style; None for a loop, or for a
        walk longer than `MAX_RESOLVE_STEPS` components or a path longer than `MAX_PATH_LENGTH`.
        """
        pending = list(reversed(_split(path)))
        # The resolved prefixes, each one component longer than the last ("/etc", "/etc/ssl"): building
        # the next candidate copies one path, not the whole list (deep hostile targets stay linear).
        resolved: list[str] = []
        hops = steps = 0
        while pending:
            steps += 1
            if steps > MAX_RESOLVE_STEPS:
                return None
            part = pending.pop()
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = f"{resolved[-1] if resolved else ''}/{part}"
            if len(candidate) > MAX_PATH_LENGTH:
                return None
            node = self._nodes.get(candidate)
            if isinstance(node, LinkNode) and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                if node.target.startswith("/"):
                    resolved = []
                pending.extend(reversed(_split(node.target)))
                continue
            resolved.append(candidate)
        return resolved[-1] if resolved else "/"

    def _file(self, path: str) -> tuple[str, FileNode] | None:
        real = self.resolve(path)
        if real is None:
            return None
        node = self._nodes.get(real)
        return (real, node) if isinstance(node, FileNode) else None

    def read(self, path: str) -> FileRead | None:
        found = self._file(path)
        if found is None or found[1].content is None:
            return None
        return FileRead(found[0], found[1].content, found[1].layer)

    def exists(self, path: str) -> bool:
        return self._file(path) is not None

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        if real is None:
            return []
        if self._children is None:
            # Directories are not nodes: each kept path names its ancestors, so that a directory lists the
            # subdirectories that lead to kept files (/usr/lib/jvm -> java-17-openjdk-amd64).
            children: dict[str, set[str]] = {}
            for p in self._nodes:
                while p != "/":
                    parent, _, name = p.rpartition("/")
                    parent = parent or "/"
                    siblings = children.setdefault(parent, set())
                    if name in siblings:
                        break  # the ancestors above are listed already
                    siblings.add(name)
                    p = parent
            self._children = children
        return sorted(self._children.get(real, ()))
