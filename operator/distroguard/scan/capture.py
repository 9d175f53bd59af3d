"""Capture rules: which tar entries the streamer keeps, and how much of each.

`capture_rule` is asked about every regular file of every layer, so it is built for the miss: one
dict lookup on the base name, and only for entries in a handful of system directories a set lookup
on the parent and one regular expression. Paths arrive normalised (`/usr/lib/os-release`) and
unresolved: a rule names the path a file really has in the tar, and the detectors reach it through
the symlinks the streamer keeps anyway (`/etc/os-release -> ../usr/lib/os-release`,
`/lib -> usr/lib`).

The rule kinds, and what the streamer stores for each:

- `Keep(max_bytes)`: the whole file; a larger file ends the scan unresolved, naming file and bound.
- `Search(pattern, max_match)`: only the first match of `pattern` (content `None` when nothing
  matched); a match is at most `max_match` bytes long, so a window that size spans chunk borders.
- `Stanzas(key, names, max_stanza)`: only the blank-line separated stanzas whose `key` line names
  one of `names`, joined by blank lines (empty bytes when none did: the database is there, the
  package is not).
- `Presence()`: only the fact that the file exists (content `None`).
- `RpmDatabase(max_bytes)`: an rpm database, reduced to the summary of the packages that matter
  (`scan.rpm.packages.RpmSummary`, a few hundred bytes); a larger database keeps a summary saying so.

The path constants below are the one list of where things live: the detectors read exactly these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep the whole file, refusing one longer than `max_bytes`."""

    max_bytes: int


@dataclass(frozen=True, slots=True)
class Search:
    """Keep only the first match of `pattern`; no match may be longer than `max_match` bytes."""

    pattern: re.Pattern[bytes]
    max_match: int


@dataclass(frozen=True, slots=True)
class Stanzas:
    """Keep the stanzas whose first `key` line (e.g. `Package:`) carries a value in `names`."""

    key: bytes
    names: frozenset[bytes]
    max_stanza: int


@dataclass(frozen=True, slots=True)
class Presence:
    """Keep only the fact that the file exists."""


@dataclass(frozen=True, slots=True)
class RpmDatabase:
    """Read the rpm database (any of its three formats) and keep its summary; at most `max_bytes` read."""

    max_bytes: int


CaptureRule = Keep | Search | Stanzas | Presence | RpmDatabase

# -- where things live ----------------------------------------------------------------------------

# os-release(5): /etc/os-release wins, /usr/lib/os-release is the fallback (and often the target).
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
LSB_RELEASE = "/etc/lsb-release"
# Linux Mint keeps its Ubuntu base's lsb-release here; only consulted for the Ubuntu codename.
UPSTREAM_LSB_RELEASE = "/etc/upstream-release/lsb-release"
DEBIAN_VERSION = "/etc/debian_version"
ALPINE_RELEASE = "/etc/alpine-release"
# Red Hat family release files, most specific first: Oracle Linux, CentOS, Rocky, Alma and
# Scientific Linux all ship a `redhat-release` too (Oracle's claims to be RHEL), so the vendor's own
# file must win.
REDHAT_RELEASE = "/etc/redhat-release"
REDHAT_RELEASE_FILES = (
    "/etc/oracle-release",
    "/etc/centos-release",
    "/etc/rocky-release",
    "/etc/almalinux-release",
    "/etc/fedora-release",
    "/etc/sl-release",
    "/etc/cloudlinux-release",
    REDHAT_RELEASE,
    "/etc/system-release",
)
SYSTEM_RELEASE_CPE = "/etc/system-release-cpe"
SUSE_RELEASE = "/etc/SuSE-release"
# Every file that may name the distribution (BusyBox aside, which says nothing about the libc).
RELEASE_FILES = (
    *OS_RELEASE_PATHS,
    LSB_RELEASE,
    DEBIAN_VERSION,
    ALPINE_RELEASE,
    *REDHAT_RELEASE_FILES,
    SYSTEM_RELEASE_CPE,
    SUSE_RELEASE,
)
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", "/usr/sbin/busybox")

DPKG_STATUS = "/var/lib/dpkg/status"
# Distroless writes one file per package here (plus `<name>.md5sums`) instead of one `status`.
DPKG_STATUS_D = "/var/lib/dpkg/status.d"
# apk-tools 3 on a merged /usr keeps its database under /usr/lib; older trees under /lib.
APK_INSTALLED_PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")

# rpm's database: sqlite (rpm >= 4.16), Berkeley DB `Packages` (older), ndb `Packages.db` (SUSE); newer
# distributions keep it under /usr/lib/sysimage/rpm with /var/lib/rpm a link to it. Most specific first.
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
RPM_DB_NAMES = ("rpmdb.sqlite", "Packages.db", "Packages")
RPM_DB_PATHS = tuple(f"{directory}/{name}" for directory in RPM_DB_DIRS for name in RPM_DB_NAMES)

# Debian multiarch triplets (and the musl ones Debian's `musl` package uses): the C library and its
# loader live in `/lib/<triplet>` or `/usr/lib/<triplet>` on Debian and Ubuntu.
_TRIPLETS = (
    "x86_64-linux-gnu",
    "aarch64-linux-gnu",
    "arm-linux-gnueabihf",
    "arm-linux-gnueabi",
    "i386-linux-gnu",
    "powerpc64le-linux-gnu",
    "s390x-linux-gnu",
    "riscv64-linux-gnu",
    "mips64el-linux-gnuabi64",
    "mipsel-linux-gnu",
    "loongarch64-linux-gnu",
    "x86_64-linux-musl",
    "aarch64-linux-musl",
)
# Only system library directories count: a libc bundled under /opt by some application says nothing
# about the image's own C library.
LIB_DIRS = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/lib32",
    "/usr/lib32",
    *(f"{prefix}/{triplet}" for prefix in ("/lib", "/usr/lib") for triplet in _TRIPLETS),
)
MUSL_LIB_DIRS = tuple(d for d in LIB_DIRS if d.endswith("-linux-musl"))
# Where interpreters sit; /usr/local/bin first because it comes first in PATH (the official python
# images put their Python there, over a distribution Python in /usr/bin).
BIN_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")

# -- what is looked for ---------------------------------------------------------------------------

# Search patterns end by consuming one byte past the version: the streamer searches a window that
# ends where the data read so far ends, and a pattern ending in `\d+` would match "2.3" there when
# the file goes on "6.". The terminator makes a cut-off version not match yet.
#
# glibc's libc.so.6 embeds the text `gnu_get_libc_version` prints, e.g. "GNU C Library (Debian GLIBC
# 2.36-9+deb12u4) stable release version 2.36." (also "development release version 2.39.9000.").
LIBC_BANNER = re.compile(rb"GNU C Library[^\n\x00]{0,120}?release version (\d+\.\d+)[^\d]")
# BusyBox's banner: "BusyBox v1.36.1 (2023-07-27 17:12:24 UTC) multi-call binary."
BUSYBOX_BANNER = re.compile(rb"BusyBox v(\d+\.\d+(?:\.\d+)?)[^\d.]")

# File names in LIB_DIRS that tell the C library apart; the libc detector classifies by group name.
LIB_NAME = re.compile(
    r"(?P<libc_versioned>libc-(?P<libc_version>\d+\.\d+)(?:\.\d+)?\.so)"  # glibc < 2.34
    r"|(?P<ld_versioned>ld-(?P<ld_version>\d+\.\d+)(?:\.\d+)?\.so)"  # glibc < 2.34 loader
    r"|(?P<glibc_loader>ld-linux(?:-[a-z0-9_-]+)?\.so\.\d+|ld64\.so\.\d+)"
    r"|(?P<musl_loader>ld-musl-[a-z0-9_]+\.so\.1)"
    r"|(?P<musl_libc>libc\.musl-[a-z0-9_]+\.so\.1)"
)
# python3.12, python2.7, python3.13t (free-threaded build); not python3, python3.12-config.
PYTHON_BINARY = re.compile(r"python(?P<major>\d+)\.(?P<minor>\d+)t?")

DPKG_LIBC_PACKAGES = frozenset({b"libc6", b"libc6.1", b"libc0.1", b"libc0.3", b"musl"})
# gcompat and libc6-compat are glibc shims on a musl system; `glibc` is Wolfi's libc (or, next to
# `musl`, a glibc dropped beside Alpine's own musl).
APK_LIBC_PACKAGES = frozenset({b"musl", b"glibc", b"gcompat", b"libc6-compat"})

# -- the rules ------------------------------------------------------------------------------------

# Release files are a few hundred bytes; 64 KiB is generous and still bounds a hostile one.
RELEASE_FILE_BYTES = 64 * 1024
# A stanza dropped for being too long would read as "package absent" (and so "no libc"), so the
# bound is far above real stanzas (Wolfi's glibc, with every file listed, is well under 100 KiB).
MAX_STANZA_BYTES = 1024 * 1024
# Real rpm databases in images run from a few MB (UBI minimal) to ~35 MB (a CentOS 7 with hundreds of
# packages); the bytes are held only while the database is read, then reduced to its summary.
RPM_DB_BYTES = 48 * 1024 * 1024

_KEEP_RELEASE = Keep(RELEASE_FILE_BYTES)
_LIBC_SEARCH = Search(LIBC_BANNER, 256)
_BUSYBOX_SEARCH = Search(BUSYBOX_BANNER, 64)
_DPKG_STANZAS = Stanzas(b"Package:", DPKG_LIBC_PACKAGES, MAX_STANZA_BYTES)
_APK_STANZAS = Stanzas(b"P:", APK_LIBC_PACKAGES, MAX_STANZA_BYTES)
_PRESENCE = Presence()
_RPM_DATABASE = RpmDatabase(RPM_DB_BYTES)


def _by_name() -> dict[str, dict[str, CaptureRule]]:
    """Base name -> parent directory -> rule, for every file kept under a fixed name."""
    table: dict[str, dict[str, CaptureRule]] = {}

    def add(path: str, rule: CaptureRule) -> None:
        parent, _, name = path.rpartition("/")
        table.setdefault(name, {})[parent or "/"] = rule

    for path in (*RELEASE_FILES, UPSTREAM_LSB_RELEASE):
        add(path, _KEEP_RELEASE)
    for path in BUSYBOX_PATHS:
        add(path, _BUSYBOX_SEARCH)
    # In the official busybox image every applet is a hard link to one file, and the tar stores its
    # data under the name that comes first, `bin/[`: keep that too, so `bin/busybox` gets content.
    for directory in ("/bin", "/usr/bin"):
        add(f"{directory}/[", _BUSYBOX_SEARCH)
    add(DPKG_STATUS, _DPKG_STANZAS)
    for path in APK_INSTALLED_PATHS:
        add(path, _APK_STANZAS)
    for path in RPM_DB_PATHS:
        add(path, _RPM_DATABASE)
    for directory in LIB_DIRS:
        add(f"{directory}/libc.so.6", _LIBC_SEARCH)
    # Debian's musl package: /lib/ld-musl-<arch>.so.1 links to /usr/lib/<arch>-linux-musl/libc.so.
    for directory in MUSL_LIB_DIRS:
        add(f"{directory}/libc.so", _PRESENCE)
    return table


_BY_NAME = _by_name()
_LIB_DIR_SET = frozenset(LIB_DIRS)
_BIN_DIR_SET = frozenset(BIN_DIRS)
# LIB_NAME and PYTHON_BINARY only match names starting so: a two-letter test spares the rest.
_PATTERN_STARTS = frozenset({"ld", "li", "py"})
_STATUS_D_SLASH = len(DPKG_STATUS_D)


def capture_rule(path: str) -> CaptureRule | None:
    """How much of the file at `path` (normalised, unresolved) to keep; None to skip it."""
    slash = path.rfind("/")
    name = path[slash + 1 :]
    by_parent = _BY_NAME.get(name)
    if by_parent is not None:
        rule = by_parent.get(path[:slash] or "/")
        if rule is not None:
            return rule
    if slash == _STATUS_D_SLASH and path.startswith(DPKG_STATUS_D):
        return None if name.endswith(".md5sums") else _DPKG_STANZAS
    if name[:2] not in _PATTERN_STARTS:
        return None
    parent = path[:slash]
    if parent in _LIB_DIR_SET:
        return _PRESENCE if LIB_NAME.fullmatch(name) else None
    if parent in _BIN_DIR_SET:
        return _PRESENCE if PYTHON_BINARY.fullmatch(name) else None
    return None
