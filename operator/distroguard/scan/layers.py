"""Read image layers, bottom up, into the squashed `FileTree`: the overlay rules of the OCI image spec.

Each layer is fed as it streams (compressed bytes in, nothing written anywhere). Its changes are gathered
apart from the tree and applied when the layer ends, because whiteouts and opaque directories hide only
what *lower* layers had, never what the same layer adds:

- `.wh.NAME` removes NAME (and all below it) from lower layers; `.wh..wh..opq` empties its directory;
- any entry replaces a lower entry at its path; a non-directory replacing a lower directory hides its tree;
- a hard link takes its target's node (from this layer or a lower one); a link to nothing is ignored.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field

from distroguard.errors import DigestMismatch, ScanLimitExceeded
from distroguard.scan.capture import PROGRAM_RULE, Presence, capture_rule
from distroguard.scan.collect import Collector, collector_for
from distroguard.scan.decompress import DecompressionLimits, Decompressor
from distroguard.scan.tarstream import TarEntry, TarLimits, TarReader
from distroguard.scan.tree import FileNode, FileTree, LinkNode, Node, normalize

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """The hard bounds of one image scan; hitting one leaves the image unresolved, saying which."""

    decompression: DecompressionLimits = field(default_factory=DecompressionLimits)
    """Per-layer decompression bounds (total bytes, bomb ratio)."""
    tar: TarLimits = field(default_factory=TarLimits)
    """Per-layer tar bounds (entries, metadata records)."""
    max_kept_nodes: int = 200_000
    """Symlinks and captured files kept for the whole image."""
    max_kept_bytes: int = 32 * 1024 * 1024
    """Content kept for the whole image (each file is bounded by its capture rule, this bounds them all)."""
    max_path_length: int = 4096
    """Longer paths or link targets (PATH_MAX) cannot be a system file: such entries are skipped."""


class LayerScan:
    """One layer being read; `feed` its compressed bytes, then `close` to apply it to the tree."""

    def __init__(
        self,
        tree: FileTree,
        layer: str,
        limits: ScanLimits,
        diff_id: str | None = None,
        *,
        programs: frozenset[str] = frozenset(),
    ) -> None:
        """`programs`: paths of the image's program (from its config), searched for Go build information
        wherever they are."""
        self.tree = tree
        self.layer = layer
        self.limits = limits
        self.diff_id = diff_id
        self._programs = programs
        self._decompressor = Decompressor(limits.decompression)
        self._tar = TarReader(self, limits.tar)
        self._hash = hashlib.sha256() if diff_id and diff_id.startswith("sha256:") else None
        # Changes of this layer, applied to the tree only at `close`.
        self._nodes: dict[str, Node] = {}
        self._whiteouts: set[str] = set()
        self._opaque: set[str] = set()
        self._replaced: set[str] = set()
        self._lower_dirs: set[str] | None = None
        self._path = ""
        self._collector: Collector | None = None
        self._kept_bytes = 0
        self._lower_kept_bytes = tree.kept_bytes
        self._closed = False

    @property
    def entries(self) -> int:
        return self._tar.entries

    @property
    def bytes_in(self) -> int:
        return self._decompressor.bytes_in

    @property
    def bytes_out(self) -> int:
        return self._decompressor.bytes_out

    def feed(self, data: bytes) -> None:
        for piece in self._decompressor.feed(data):
            self._take(piece)

    def close(self) -> None:
        """The layer's bytes are all in: check the streams ended properly and apply the changes."""
        if self._closed:
            return
        for piece in self._decompressor.finish():
            self._take(piece)
        self._tar.close()
        if self._hash is not None and self.diff_id is not None:
            actual = "sha256:" + self._hash.hexdigest()
            if actual != self.diff_id:
                raise DigestMismatch(f"layer {self.layer} uncompressed content", self.diff_id, actual)
        self._apply()
        self._closed = True

    def _take(self, piece: bytes) -> None:
        if self._hash is not None:
            self._hash.update(piece)
        self._tar.feed(piece)

    # -- TarHandler ------------------------------------------------------------------------------

    def on_entry(self, entry: TarEntry) -> bool:
        max_path = self.limits.max_path_length
        if len(entry.path) > max_path or len(entry.linkname) > max_path:
            return False
        path = normalize(entry.path)
        if path == "/":
            return False
        parent, _, name = path.rpartition("/")
        parent = parent or "/"
        if name.startswith(WHITEOUT):
            if name == OPAQUE:
                self._opaque.add(parent)
            else:
                self._whiteouts.add(posixpath.join(parent, name[len(WHITEOUT) :]))
            return False
        # A directory replaces only a lower non-directory; anything else replaces whatever was there.
        lower = self.tree.get_normalized(path)
        replaces = lower is not None if entry.kind == "dir" else self._hides_lower(path, lower)
        if replaces:
            self._replaced.add(path)
        self._nodes.pop(path, None)
        if entry.kind == "symlink":
            self._keep(path, LinkNode(entry.linkname, self.layer))
            return False
        if entry.kind == "hardlink":
            self._hardlink(path, entry.linkname)
            return False
        if entry.kind != "file":
            return False
        rule = capture_rule(path)
        if rule is None and path in self._programs:
            rule = PROGRAM_RULE
        if rule is None:
            return False
        if isinstance(rule, Presence):
            self._keep(path, FileNode(None, self.layer, entry.size))
            return False
        self._path = path
        self._collector = collector_for(path, rule, entry.size)
        return True

    def on_data(self, chunk: memoryview) -> None:
        assert self._collector is not None
        self._collector.add(chunk)

    def on_entry_end(self) -> None:
        assert self._collector is not None
        content = self._collector.result()
        self._collector = None
        self._keep(self._path, FileNode(content, self.layer, len(content or b"")))

    # -- helpers ---------------------------------------------------------------------------------

    def _hides_lower(self, path: str, lower: Node | None) -> bool:
        if lower is not None:
            return True
        if self._lower_dirs is None:
            self._lower_dirs = self.tree.directories()
        return path in self._lower_dirs

    def _hardlink(self, path: str, target: str) -> None:
        target = normalize(target)
        node = self._nodes.get(target) or self.tree.get(target)
        if isinstance(node, FileNode):
            self._keep(path, FileNode(node.content, self.layer, node.size))
        elif capture_rule(path) is not None:
            # The target was not kept (or does not exist): the file's presence is all we know.
            self._keep(path, FileNode(None, self.layer, 0))

    def _keep(self, path: str, node: Node) -> None:
        limits = self.limits
        if len(self.tree) + len(self._nodes) >= limits.max_kept_nodes:
            raise ScanLimitExceeded("max_kept_nodes", limits.max_kept_nodes, "symlinks and captured files")
        if isinstance(node, FileNode) and node.content:
            self._kept_bytes += len(node.content)
            if self._lower_kept_bytes + self._kept_bytes > limits.max_kept_bytes:
                raise ScanLimitExceeded("max_kept_bytes", limits.max_kept_bytes, "captured file content")
        self._nodes[path] = node

    def _apply(self) -> None:
        tree = self.tree
        for directory in self._opaque:
            tree.remove_below(directory)
        for path in self._whiteouts | self._replaced:
            tree.remove(path)
        for path, node in self._nodes.items():
            tree.put(path, node)
