"""Real rpm databases for the tests, made by real rpm and Berkeley DB tools on this machine.

- `build_rpm`: a small package built by `rpmbuild` from a spec, named like the real one (`glibc`,
  `python3.11`, ...), with as many files as asked, so that its header is as large as a real package's.
- `sqlite_database`: rpm 4.18 installs the packages (`--justdb`) into a throwaway root: `rpmdb.sqlite`, the
  format of RHEL 9, Fedora and Amazon Linux 2023.
- `bdb_database`: Debian's rpm reads Berkeley DB but no longer writes it, so the headers rpm exports
  (`rpmdb --exportdb`) are loaded by Berkeley DB's own `db_load` into a hash database keyed by package
  number, as rpm's `Packages` is; `rpm_query` with rpm's read-only bdb backend then reads it back.
- `go_rpmdb_testdata`: Debian's rpm has no ndb backend at all, so SUSE's format comes from a real SUSE
  image's `Packages.db` (and more real databases of CentOS, Fedora and UBI images), the test data of the Go
  module github.com/knqyf263/go-rpmdb (MIT), fetched through the Go module proxy like every Go module here.

Needs Debian's `rpm` and `db5.3-util` (scripts/test installs them) and, for the Go module, `go`.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

GO_RPMDB = "github.com/knqyf263/go-rpmdb@v0.1.1"
HEADER_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    release: str
    epoch: int | None = None
    files: int = 50
    """Files the package owns: each adds its name to the header (real glibc owns ~400)."""


def _run(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, env=env, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def build_rpm(workdir: Path, package: Package) -> Path:
    """The package's .rpm, built by rpmbuild under `workdir`."""
    lines = [
        f"Name: {package.name}",
        f"Version: {package.version}",
        f"Release: {package.release}",
        *([f"Epoch: {package.epoch}"] if package.epoch is not None else []),
        f"Summary: test stand-in for {package.name}",
        "License: MIT",
        "BuildArch: x86_64",
        "%description",
        "A test stand-in, named and versioned like the distribution's package.",
        "%install",
        f"mkdir -p %{{buildroot}}/usr/share/{package.name} && cd %{{buildroot}}/usr/share/{package.name}",
        f"for i in $(seq 1 {package.files}); do echo $i > file-$i; done",
        "%files",
        f"/usr/share/{package.name}",
    ]
    spec = workdir / f"{package.name}.spec"
    spec.write_text("\n".join(lines) + "\n")
    top = workdir / "rpmbuild"
    _run(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {top}",
            "--define",
            "_build_id_links none",
            str(spec),
        ]
    )
    built = top / "RPMS" / "x86_64" / f"{package.name}-{package.version}-{package.release}.x86_64.rpm"
    if not built.is_file():
        raise RuntimeError(f"rpmbuild made no {built.name}")
    return built


def sqlite_database(workdir: Path, rpms: list[Path]) -> Path:
    """A root where rpm installed `rpms` (database only); returns the root. Its database is
    `root/var/lib/rpm/rpmdb.sqlite`."""
    root = workdir / "sqlite-root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _run(
        [
            "rpm",
            "--root",
            str(root),
            "--dbpath",
            "/var/lib/rpm",
            "--define",
            "_db_backend sqlite",
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--ignorearch",
            *map(str, rpms),
        ]
    )
    return root


def exported_headers(root: Path) -> list[bytes]:
    """The header blobs of rpm's database under `root`, as rpm stores them (without the 8-byte magic)."""
    done = subprocess.run(
        ["rpmdb", "--root", str(root), "--dbpath", "/var/lib/rpm", "--exportdb"],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rpmdb --exportdb failed: {done.stderr.decode(errors='replace')}")
    data, blobs, position = done.stdout, [], 0
    while position < len(data):
        if data[position : position + 8] != HEADER_MAGIC:
            raise RuntimeError(f"rpmdb --exportdb wrote no header magic at byte {position}")
        count, length = struct.unpack_from(">ii", data, position + 8)
        size = 8 + 16 * count + length
        blobs.append(data[position + 8 : position + 8 + size])
        position += 8 + size
    return blobs


def bdb_database(workdir: Path, blobs: list[bytes], *, page_size: int = 4096, order: str = "<") -> Path:
    """A root whose `var/lib/rpm/Packages` is a Berkeley DB hash of `blobs` under package numbers 1..n (and
    rpm's counter under key 0), written by Berkeley DB's `db_load`; returns the root."""
    root = workdir / f"bdb-root-{page_size}"
    shutil.rmtree(root, ignore_errors=True)
    directory = root / "var" / "lib" / "rpm"
    directory.mkdir(parents=True)
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={page_size}"]
    lines.append("db_lorder=1234" if order == "<" else "db_lorder=4321")
    lines.append("HEADER=END")
    records = [(0, struct.pack(order + "I", len(blobs) + 1))]
    records += [(number, blob) for number, blob in enumerate(blobs, 1)]
    for key, value in records:
        lines += [" " + struct.pack(order + "I", key).hex(), " " + value.hex()]
    lines.append("DATA=END")
    dump = workdir / f"packages-{page_size}.dump"
    dump.write_text("\n".join(lines) + "\n")
    _run([_db_load(), "-f", str(dump), str(directory / "Packages")])
    return root


def _db_load() -> str:
    for name in ("db5.3_load", "db_load"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Berkeley DB's db_load is not installed (Debian: apt-get install db5.3-util)")


def rpm_packages(root: Path, backend: str) -> dict[str, set[str]]:
    """What real rpm lists in the database under `root`: each name's `[epoch:]version-release`s. (All
    packages, not `-q NAME`: that reads rpm's Name index, which a database of `Packages` alone lacks.)"""
    done = _run(
        [
            "rpm",
            "--root",
            str(root),
            "--dbpath",
            "/var/lib/rpm",
            "--define",
            f"_db_backend {backend}",
            "-qa",
            "--qf",
            "%{NAME} %{EVR}\\n",
        ]
    )
    listed: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        name, _, evr = line.partition(" ")
        listed.setdefault(name, set()).add(evr)
    return listed


def go_rpmdb_testdata() -> Path:
    """The go-rpmdb module's `pkg/testdata` directory, downloaded (once) through the Go module proxy."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` is not on PATH: the real SUSE (ndb) database comes from a Go module")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    done = _run([go, "mod", "download", "-json", GO_RPMDB], env=env, cwd="/")
    directory = Path(json.loads(done.stdout)["Dir"]) / "pkg" / "testdata"
    if not directory.is_dir():
        raise RuntimeError(f"{GO_RPMDB} has no pkg/testdata at {directory}")
    return directory
