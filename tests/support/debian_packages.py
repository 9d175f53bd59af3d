"""Real Debian packages for test images: downloaded once with apt, unpacked here with Python.

    names = dependency_closure("trixie", ["dash"])            # dash and what it needs, apt's order
    debs = fetch_packages("trixie", ["base-files", "libc6"])   # {name: path of the .deb}, cached
    package = read_deb(debs["libc6"])                         # control fields + the data tar
    tar = rootfs_tar([package], extra={"var/lib/dpkg/status": dpkg_status([package])})

The packages come from the Debian mirror this machine's apt already uses (found with `apt-get
indextargets`), through a separate, temporary apt configuration under the repository's `.cache/`:
the machine's own sources, lists and package cache are never touched. apt checks the suite's signed
Release file with the machine's trusted keys and each .deb against the hashes it lists, so what is
cached is what Debian published. A second call finds the .debs in the cache and runs nothing.

A .deb is an `ar` archive holding `control.tar.*` and `data.tar.*` (xz, gzip, zstd or plain); no
dpkg tool is needed to read one.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import lzma
import os
import subprocess
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

REPOSITORY = Path(__file__).resolve().parents[2]
CACHE = REPOSITORY / ".cache" / "debian"
#: What the Debian "slim" images leave out of every package (their dpkg path-exclude rules).
SLIM_EXCLUDES = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
)
APT_TIMEOUT = 600.0
MTIME = 1_700_000_000


class DebianFetchError(RuntimeError):
    """The packages could not be downloaded; the message holds apt's own words."""


# ---------------------------------------------------------------------- download


def debian_mirror() -> str:
    """The Debian archive URI (`http://deb.debian.org/debian/`) this machine's apt sources use."""
    result = _run(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(REPO_URI)\t$(ORIGIN)\t$(LABEL)\t$(RELEASE)",
            "Identifier: Packages",
        ]
    )
    candidates = []
    for line in result.splitlines():
        uri, origin, label, release = [*line.split("\t"), "", "", ""][:4]
        # The main archive: not debian-security, not the -updates / -backports suites.
        if origin == "Debian" and label == "Debian" and "-" not in release and uri:
            candidates.append(uri)
    if not candidates:
        raise DebianFetchError(
            "no Debian archive among this machine's apt sources (apt-get indextargets lists none "
            "with Origin and Label 'Debian'); run `apt-get update` on a Debian machine first"
        )
    return candidates[0]


def _run(command: Sequence[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            list(command),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DebianFetchError(f"{command[0]}: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise DebianFetchError(f"`{' '.join(command[:2])} ...` exited {done.returncode}: {said}")
    return done.stdout


def _apt_options(root: Path, architecture: str) -> list[str]:
    options = {
        "Dir::Etc::sourcelist": root / "sources.list",
        "Dir::Etc::sourceparts": root / "sources.list.d",
        "Dir::State::Lists": root / "lists",
        "Dir::State::status": root / "status",
        "Dir::Cache": root / "apt-cache",
        "APT::Architecture": architecture,
        "APT::Architectures": architecture,
        "Debug::NoLocking": "1",
        # The machine's own configuration may ask for more indexes (DEP-11 and the like): not these.
        "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled": "false",
        "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled": "false",
        "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
        "Acquire::Languages": "none",
    }
    if os.geteuid() == 0:
        # apt drops to its `_apt` user to download, which cannot write into the repository's cache.
        options["APT::Sandbox::User"] = "root"
    return [part for key, value in options.items() for part in ("-o", f"{key}={value}")]


def _cached(debs: Path, name: str, architecture: str) -> Path | None:
    found = sorted(debs.glob(f"{name}_*_{architecture}.deb")) + sorted(debs.glob(f"{name}_*_all.deb"))
    return found[0] if found else None


@contextmanager
def _exclusive(cache: Path, suite: str, architecture: str) -> Iterator[None]:
    """One process at a time in a suite's apt directory: two test runs at once would otherwise replace
    each other's lists mid-download (apt fails with "Failed to stat .../lists/partial/...")."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{suite}-{architecture}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _apt_root(suite: str, architecture: str, cache: Path, *, update: bool) -> tuple[Path, list[str]]:
    """The suite's private apt directory and the options that point apt at it; its package lists
    are downloaded when `update` is set or when there are none yet.
    """
    root = cache / f"{suite}-{architecture}"
    lists = root / "lists"
    for directory in (root / "sources.list.d", lists / "partial", root / "apt-cache", root / "debs"):
        directory.mkdir(parents=True, exist_ok=True)
    options = _apt_options(root, architecture)
    if update or not any(lists.glob("*_Packages*")):
        (root / "sources.list").write_text(f"deb {debian_mirror()} {suite} main\n")
        # An empty dpkg status: apt plans for a system where nothing is installed yet.
        (root / "status").write_bytes(b"")
        _run(["apt-get", "-qq", *options, "update"])
    return root, options


def dependency_closure(
    suite: str, names: Iterable[str], *, architecture: str = "amd64", cache: Path = CACHE
) -> list[str]:
    """`names` and every package they need (Depends and Pre-Depends, not Recommends), in the order
    apt would install them on an empty system: apt's own resolver answers, from the suite's lists.
    """
    with _exclusive(cache, suite, architecture):
        _, options = _apt_root(suite, architecture, cache, update=False)
        plan = _run(["apt-get", "-s", *options, "install", "--no-install-recommends", *names])
    # One line per package: `Inst libc6 (2.41-12+deb13u5 Debian:13.4/stable [amd64])`.
    return [line.split()[1] for line in plan.splitlines() if line.startswith("Inst ")]


def fetch_packages(
    suite: str, names: Iterable[str], *, architecture: str = "amd64", cache: Path = CACHE
) -> dict[str, Path]:
    """The .deb of each package of `suite` (main), downloaded into the cache the first time."""
    wanted = list(names)
    debs = cache / f"{suite}-{architecture}" / "debs"
    found = {name: _cached(debs, name, architecture) for name in wanted}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        with _exclusive(cache, suite, architecture):
            _, options = _apt_root(suite, architecture, cache, update=True)
            _run(["apt-get", "-qq", *options, "download", *missing], cwd=debs)
        for name in missing:
            found[name] = _cached(debs, name, architecture)
            if found[name] is None:
                raise DebianFetchError(f"apt-get download {name} ({suite}) left no .deb in {debs}")
    return {name: path for name, path in found.items() if path is not None}


# ---------------------------------------------------------------------- reading a .deb


@dataclass(frozen=True)
class DebPackage:
    control_text: str
    """The package's `control` file, as dpkg reads it."""
    data: bytes
    """Its `data.tar`, decompressed: the files it installs."""

    @property
    def fields(self) -> dict[str, str]:
        """The control fields (continuation lines joined to their field)."""
        fields: dict[str, str] = {}
        last = ""
        for line in self.control_text.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        return fields

    @property
    def name(self) -> str:
        return self.fields["Package"]

    @property
    def version(self) -> str:
        return self.fields["Version"]

    def paths(self) -> list[str]:
        """The regular files the package installs (`usr/lib/os-release`), in its data tar's order."""
        with tarfile.open(fileobj=io.BytesIO(self.data)) as archive:
            return [_name(member.name) for member in archive if member.isfile()]

    def read(self, path: str) -> bytes:
        """One regular file of the package (`usr/lib/os-release`)."""
        with tarfile.open(fileobj=io.BytesIO(self.data)) as archive:
            for member in archive:
                if _name(member.name) == path.strip("/") and member.isfile():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    return extracted.read()
        raise KeyError(f"{self.name} has no file {path}")


def _ar_members(blob: bytes, source: str) -> dict[str, bytes]:
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{source}: not an ar archive (no .deb)")
    members: dict[str, bytes] = {}
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"{source}: broken ar member header at byte {offset}")
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = offset + 60
        members[name] = blob[start : start + size]
        offset = start + size + (size % 2)
    return members


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".zst"):
        return bytes(zstd.decompress(data))
    if name.endswith(".tar"):
        return data
    raise ValueError(f"unknown compression of {name}")


def _member(members: Mapping[str, bytes], stem: str, source: str) -> tuple[str, bytes]:
    for name, data in members.items():
        if name.startswith(stem):
            return name, data
    raise ValueError(f"{source}: no {stem}* member")


def read_deb(path: Path) -> DebPackage:
    members = _ar_members(path.read_bytes(), str(path))
    if members.get("debian-binary", b"").strip() != b"2.0":
        raise ValueError(f"{path}: not a version 2.0 Debian package")
    control_name, control_blob = _member(members, "control.tar", str(path))
    data_name, data_blob = _member(members, "data.tar", str(path))
    with tarfile.open(fileobj=io.BytesIO(_decompress(control_name, control_blob))) as archive:
        control = next(
            (archive.extractfile(m) for m in archive if _name(m.name) == "control" and m.isfile()), None
        )
        if control is None:
            raise ValueError(f"{path}: {control_name} has no control file")
        control_text = control.read().decode("utf-8")
    return DebPackage(control_text=control_text, data=_decompress(data_name, data_blob))


def _name(raw: str) -> str:
    return raw.removeprefix("./").strip("/")


# ---------------------------------------------------------------------- building a root file system


def dpkg_status(packages: Iterable[DebPackage]) -> bytes:
    """`/var/lib/dpkg/status` as dpkg writes it after installing `packages`: each control stanza
    with `Status: install ok installed` after its Package field, stanzas separated by a blank line.
    """
    stanzas = []
    for package in packages:
        lines = package.control_text.rstrip("\n").splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("Package:")) + 1
        stanzas.append("\n".join([*lines[:at], "Status: install ok installed", *lines[at:]]) + "\n")
    return "\n".join(stanzas).encode()


def rootfs_tar(
    packages: Sequence[DebPackage],
    *,
    extra: Mapping[str, bytes] | None = None,
    symlinks: Mapping[str, str] | None = None,
    excludes: Sequence[str] = SLIM_EXCLUDES,
) -> bytes:
    """An uncompressed layer tar with the files of `packages` (owned by root, paths relative), minus
    `excludes`, plus `extra` regular files and `symlinks` (path → target). The first package to
    name a path wins, as dpkg refuses a second owner.
    """
    buffer = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:

        def add(info: tarfile.TarInfo, content: bytes | None = None) -> None:
            parts = info.name.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in seen:
                    directory = tarfile.TarInfo(parent)
                    directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    seen.add(parent)
                    out.addfile(directory)
            seen.add(info.name)
            out.addfile(info, io.BytesIO(content) if content is not None else None)

        for package in packages:
            with tarfile.open(fileobj=io.BytesIO(package.data)) as archive:
                for member in archive:
                    name = _name(member.name)
                    if not name or name in seen or any(name.startswith(prefix) for prefix in excludes):
                        continue
                    info = tarfile.TarInfo(name)
                    info.type, info.mode, info.mtime, info.size = member.type, member.mode, member.mtime, 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                    if member.issym():
                        info.linkname = member.linkname
                    elif member.islnk():
                        info.linkname = _name(member.linkname)
                    content = None
                    if member.isfile():
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        content = extracted.read()
                        info.size = len(content)
                    add(info, content)
        for path, data in (extra or {}).items():
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            add(info, data)
        for path, target in (symlinks or {}).items():
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, MTIME
            add(info)
    return buffer.getvalue()
