"""Files of a local image (a directory, or the members of a tar archive), read without blocking the
loop.

Reads go through `asyncio.to_thread` one chunk at a time: a layer is never held whole in memory and
the event loop (which may be serving admission requests) never waits on the disk.
"""

from __future__ import annotations

import asyncio
import posixpath
import stat
import tarfile
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from distroguard.errors import LocalImageError, ScanLimitExceeded, SourceError
from distroguard.registry.digest import DigestVerifier
from distroguard.registry.manifest import Descriptor
from distroguard.registry.meter import ByteMeter

#: Members one archive may have (a `docker save` of a big image has a few hundred).
MAX_ARCHIVE_MEMBERS = 100_000
#: Symlinks followed to find one archive member (old `docker save` links shared layers).
MAX_MEMBER_LINKS = 16
DEFAULT_CHUNK = 256 * 1024


class FileStore(Protocol):
    """Named files: `size` (None when absent), bounded `read`, chunked `stream`."""

    description: str

    async def size(self, name: str) -> int | None: ...

    def stream(
        self, name: str, *, chunk_size: int = DEFAULT_CHUNK, meter: ByteMeter | None = None
    ) -> AsyncGenerator[bytes, None]: ...


async def read_file(store: FileStore, name: str, max_bytes: int, meter: ByteMeter | None = None) -> bytes:
    """The whole of `name`, refused (ScanLimitExceeded) when larger than `max_bytes`."""
    size = await store.size(name)
    if size is None:
        raise LocalImageError(f"{store.description}: {name} is missing")
    if size > max_bytes:
        raise ScanLimitExceeded("max_bytes", max_bytes, f"{store.description}: {name} is {size} bytes")
    return b"".join([chunk async for chunk in store.stream(name, meter=meter)])


async def _chunks(
    path: Path, offset: int, length: int, chunk_size: int, meter: ByteMeter | None, what: str
) -> AsyncGenerator[bytes, None]:
    try:
        file: BinaryIO = await asyncio.to_thread(path.open, "rb")
    except OSError as exc:
        raise LocalImageError(f"{what}: cannot open ({exc.strerror or exc})") from None
    try:
        if offset:
            await asyncio.to_thread(file.seek, offset)
        left = length
        while left > 0:
            data = await asyncio.to_thread(file.read, min(chunk_size, left))
            if not data:
                raise LocalImageError(f"{what}: ends {left} bytes early (truncated file?)")
            left -= len(data)
            if meter is not None:
                meter.add(len(data))
            yield data
    finally:
        file.close()


class DirectoryStore:
    """Files under a directory; names are relative POSIX paths that must stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def _path(self, name: str) -> Path:
        normal = posixpath.normpath(name)
        if normal.startswith(("/", "..")) or normal == ".":
            raise LocalImageError(f"{self.description}: refusing path {name!r} outside the layout")
        return self.root / normal

    async def size(self, name: str) -> int | None:
        path = self._path(name)
        try:
            info = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LocalImageError(f"{self.description}: {name}: {exc.strerror or exc}") from None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    async def stream(
        self, name: str, *, chunk_size: int = DEFAULT_CHUNK, meter: ByteMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        size = await self.size(name)
        if size is None:
            raise LocalImageError(f"{self.description}: {name} is missing")
        async for chunk in _chunks(
            self._path(name), 0, size, chunk_size, meter, f"{self.description}: {name}"
        ):
            yield chunk


@dataclass(frozen=True, slots=True)
class _Member:
    offset: int
    size: int


class TarStore:
    """Regular-file members of an uncompressed tar archive, located once and then read in place."""

    def __init__(self, path: Path, members: dict[str, _Member]) -> None:
        self.path = path
        self.description = str(path)
        self._members = members

    @classmethod
    async def open(cls, path: Path) -> TarStore:
        return cls(path, await asyncio.to_thread(_index_tar, path))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._members)

    async def size(self, name: str) -> int | None:
        member = self._members.get(_tar_name(name))
        return member.size if member else None

    async def stream(
        self, name: str, *, chunk_size: int = DEFAULT_CHUNK, meter: ByteMeter | None = None
    ) -> AsyncGenerator[bytes, None]:
        member = self._members.get(_tar_name(name))
        if member is None:
            raise LocalImageError(f"{self.description}: no member {name!r} in the archive")
        async for chunk in _chunks(
            self.path, member.offset, member.size, chunk_size, meter, f"{self.description}: {name}"
        ):
            yield chunk


def _tar_name(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _index_tar(path: Path) -> dict[str, _Member]:
    """Member name → where its data is, with symlinks and hard links resolved to their targets."""
    try:
        with path.open("rb") as probe:
            head = probe.read(4)
    except OSError as exc:
        raise LocalImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
        raise LocalImageError(
            f"{path}: the archive itself is compressed; decompress it first (gunzip / unzstd)"
        )
    files: dict[str, _Member] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:") as archive:
            for count, info in enumerate(archive, 1):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise ScanLimitExceeded(
                        "MAX_ARCHIVE_MEMBERS", MAX_ARCHIVE_MEMBERS, f"{path} has more members"
                    )
                name = _tar_name(info.name)
                if info.isreg():
                    files[name] = _Member(info.offset_data, info.size)
                elif info.issym():
                    links[name] = posixpath.join(posixpath.dirname(name), info.linkname)
                elif info.islnk():
                    links[name] = info.linkname
    except (tarfile.TarError, OSError) as exc:
        raise LocalImageError(f"{path}: not a readable tar archive ({exc})") from None
    for name, target in links.items():
        for _ in range(MAX_MEMBER_LINKS):
            target = _tar_name(target)
            if target in files:
                files[name] = files[target]
                break
            if target not in links:
                break
            target = links[target]
    return files


async def _checked_size(store: FileStore, name: str, desc: Descriptor, what: str) -> None:
    size = await store.size(name)
    if size is None:
        raise LocalImageError(f"{what}: missing from {store.description}")
    if size != desc.size:
        raise SourceError(f"{what}: the file has {size} bytes, the descriptor says {desc.size}")


async def read_verified(
    store: FileStore,
    name: str,
    desc: Descriptor,
    *,
    max_bytes: int,
    meter: ByteMeter | None,
    what: str,
) -> bytes:
    """A whole blob file, checked against its descriptor's size and digest."""
    if desc.size > max_bytes:
        raise ScanLimitExceeded("max_bytes", max_bytes, f"{what} is {desc.size} bytes")
    return b"".join([chunk async for chunk in stream_verified(store, name, desc, meter=meter, what=what)])


async def stream_verified(
    store: FileStore,
    name: str,
    desc: Descriptor,
    *,
    meter: ByteMeter | None,
    what: str,
    chunk_size: int = DEFAULT_CHUNK,
) -> AsyncGenerator[bytes, None]:
    """A blob file in chunks, hashed on the way; DigestMismatch after the last chunk when it is
    wrong.
    """
    verifier = DigestVerifier(desc.digest, what, desc.size)
    await _checked_size(store, name, desc, what)
    stream = store.stream(name, chunk_size=chunk_size, meter=meter)
    try:
        async for chunk in stream:
            verifier.update(chunk)
            yield chunk
    finally:
        await stream.aclose()
    verifier.verify()


def split_location(text: str, is_target: Callable[[Path], bool], kind: str) -> tuple[Path, str | None]:
    """`PATH` or `PATH:SELECTOR` → (PATH, SELECTOR): the whole text if it names a target, else the
    shortest prefix before a `:` that does (paths may contain `:`, tags do too: `python:3.12`).
    Blocking (it looks at the file system): run it in a thread.
    """
    if not text:
        raise LocalImageError(f"no {kind} path given")
    if is_target(Path(text)):
        return Path(text), None
    for i, char in enumerate(text):
        if char == ":" and i > 0 and is_target(Path(text[:i])):
            return Path(text[:i]), text[i + 1 :] or None
    raise LocalImageError(f"{text}: no such {kind}")
