"""Image roots for detector tests, built the way the streamer builds them.

Every file goes through its capture rule, so a test sees only what a real scan keeps; every symlink
is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from distroguard.scan.capture import Presence, capture_rule
from distroguard.scan.collect import collector_for
from distroguard.scan.tree import FileTree
from support.images import Symlink as Link

__all__ = ["Link", "captured", "image", "image_from_dir"]

# Small chunks, so that every pattern is also found across chunk borders.
CHUNK = 64
LAYER = "sha256:" + "ab" * 32


def captured(path: str, data: bytes) -> tuple[bool, bytes | None]:
    """(kept?, stored content) for a file at `path`, as the streamer would store it."""
    rule = capture_rule(path)
    if rule is None:
        return False, None
    if isinstance(rule, Presence):
        return True, None
    collector = collector_for(path, rule)
    for start in range(0, len(data), CHUNK):
        collector.add(memoryview(data[start : start + CHUNK]))
    return True, collector.result()


def image(files: Mapping[str, bytes | Link], tree: FileTree | None = None) -> FileTree:
    """A tree from `{path: content or Link(target)}`, files filtered through the capture rules."""
    tree = tree if tree is not None else FileTree()
    for path, value in files.items():
        if isinstance(value, Link):
            tree.put_symlink(path, value.target, LAYER)
            continue
        kept, content = captured(path, value)
        if kept:
            tree.put_file(path, content, LAYER)
    return tree


def image_from_dir(root: Path) -> FileTree:
    """A tree from a directory laid out as an image root; its real symlinks stay symlinks."""
    files: dict[str, bytes | Link] = {}
    for path in sorted(root.rglob("*")):
        name = "/" + path.relative_to(root).as_posix()
        if path.is_symlink():
            files[name] = Link(os.readlink(path))
        elif path.is_file():
            files[name] = path.read_bytes()
    return image(files)
