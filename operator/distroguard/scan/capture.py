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
    max_scan: int | None = None
    """Bytes searched at most (a large binary); None: the whole file."""


@dataclass(frozen=True, slots=True)
class Stanzas:
    """Keep the stanzas whose first `key` line (e.g. `Package:`) carries a value in `names`, or one that
    `pattern` matches whole (at most `MAX_PATTERN_STANZAS` of those)."""

    key: bytes
    names: frozenset[bytes]
    max_stanza: int
    pattern: re.Pattern[bytes] | None = None


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
# Runtimes found in files (when the config's Env names none): where each keeps what gives its version.
# CPython's standard library: /usr/lib/python3.11/os.py (distribution), /usr/local/lib/python3.12/os.py
# (the official images, built from source).
PYTHON_STDLIB_DIR = re.compile(r"/usr(?:/local)?/lib/python(?P<major>\d+)\.(?P<minor>\d+)")
# libpython3.11.so.1.0, libpython3.12.so, libpython3.13t.so.1.0 in the library directories.
LIBPYTHON = re.compile(r"libpython(?P<major>\d+)\.(?P<minor>\d+)t?\.so(?:\.[\d.]+)?")
NODE_VERSION_HEADERS = ("/usr/include/node/node_version.h", "/usr/local/include/node/node_version.h")
# Official Node.js builds (the node images, distroless nodejs) embed their release URL in the binary.
NODE_BINARIES = ("/usr/local/bin/node", "/usr/bin/node", "/nodejs/bin/node", "/usr/bin/nodejs")
NODE_RELEASE_URL = re.compile(rb"nodejs\.org/download/release/v(\d+\.\d+\.\d+)/")
# A JDK's or JRE's `release` file (JAVA_VERSION="21.0.5"): Temurin under /opt/java/openjdk, the old openjdk
# images under /usr/local/openjdk-N, distributions under /usr/lib/jvm/<name>.
JAVA_HOMES = ("/opt/java/openjdk", "/usr/local/openjdk-8", "/usr/local/openjdk-11", "/usr/local/openjdk-17")
JAVA_HOME_PARENTS = ("/usr/lib/jvm", "/usr/java")
# Go 1.18+ binaries: the build information's header, then the Go version as a length-prefixed string
# (`\xff Go buildinf:`, pointer size, flags with bit 2 set: strings inline; 16 bytes; varint length).
GO_BUILDINFO = re.compile(rb"(?s)\xff Go buildinf:[\x04\x08][\x02\x03].{16}([\x01-\x7f])(go1[!-~]*?)[^!-~]")
# Binaries read for Go build information: where ko, Dockerfiles and the golang image put them.
GO_BINARY_DIRS = ("/ko-app", "/app", "/usr/local/bin", "/usr/local/go/bin")
# .NET: the shared runtime's directory is named by its version.
DOTNET_RUNTIME_DIRS = (
    "/usr/share/dotnet/shared/Microsoft.NETCore.App",
    "/usr/lib/dotnet/shared/Microsoft.NETCore.App",
)
# Ruby's rbconfig.rb, in its versioned library directory (the ruby images: /usr/local/lib/ruby/3.3.0/
# x86_64-linux/rbconfig.rb; Debian: /usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb).
RUBY_CONFIG_DIR = re.compile(
    r"/usr(?:/local)?/lib(?:/[a-z0-9_]+-linux-gnu)?/ruby/\d+\.\d+\.\d+(?:/[a-z0-9_-]+)?"
)
RUBY_PROGRAM_VERSION = re.compile(rb'CONFIG\["RUBY_PROGRAM_VERSION"\] = "(\d+\.\d+\.\d+)"')
# PHP's headers, which the php images ship (`docker-php-ext-install` builds against them).
PHP_VERSION_HEADERS = ("/usr/local/include/php/main/php_version.h", "/usr/include/php/main/php_version.h")
# Bytes searched in one binary for a version (the node binary runs to ~100 MB).
MAX_BINARY_SEARCH = 128 * 1024 * 1024

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

# Package names that give a runtime's version, per package manager (rpm: `scan.rpm.packages.WANTED`).
DPKG_RUNTIME_PACKAGES = re.compile(
    rb"python\d+\.\d+(?:-minimal)?|nodejs|openjdk-\d+-(?:jre|jdk)(?:-headless)?|golang-\d+\.\d+-go"
    rb"|ruby\d+\.\d+|php\d+\.\d+-(?:cli|common)|dotnet-runtime-\d+\.\d+"
)
APK_RUNTIME_PACKAGES = re.compile(
    rb"python3|nodejs(?:-current)?|openjdk\d+(?:-jre(?:-headless)?|-jdk)?|go|ruby|php\d*|dotnet\d+-runtime"
)
MAX_PATTERN_STANZAS = 64
"""Stanzas kept by pattern per database: a system has a handful of runtimes."""

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
_DPKG_STANZAS = Stanzas(b"Package:", DPKG_LIBC_PACKAGES, MAX_STANZA_BYTES, DPKG_RUNTIME_PACKAGES)
_APK_STANZAS = Stanzas(b"P:", APK_LIBC_PACKAGES, MAX_STANZA_BYTES, APK_RUNTIME_PACKAGES)
_NODE_SEARCH = Search(NODE_RELEASE_URL, 64, MAX_BINARY_SEARCH)
_GO_SEARCH = Search(GO_BUILDINFO, 160, MAX_BINARY_SEARCH)
_KEEP_SMALL = Keep(64 * 1024)
_RUBY_SEARCH = Search(RUBY_PROGRAM_VERSION, 64)
PROGRAM_RULE = _GO_SEARCH
"""For the image's own program (its Entrypoint or Cmd), wherever it is: Go build information."""
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
    for path in NODE_VERSION_HEADERS:
        add(path, _KEEP_SMALL)
    for path in NODE_BINARIES:
        add(path, _NODE_SEARCH)
    for home in JAVA_HOMES:
        add(f"{home}/release", _KEEP_SMALL)
    for path in PHP_VERSION_HEADERS:
        add(path, _KEEP_SMALL)
    for directory in LIB_DIRS:
        add(f"{directory}/libc.so.6", _LIBC_SEARCH)
    # Debian's musl package: /lib/ld-musl-<arch>.so.1 links to /usr/lib/<arch>-linux-musl/libc.so.
    for directory in MUSL_LIB_DIRS:
        add(f"{directory}/libc.so", _PRESENCE)
    return table


_BY_NAME = _by_name()
_LIB_DIR_SET = frozenset(LIB_DIRS)
_BIN_DIR_SET = frozenset(BIN_DIRS)
_GO_BINARY_DIR_SET = frozenset(GO_BINARY_DIRS)
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
    parent = path[:slash]
    if name == "os.py":
        return _PRESENCE if PYTHON_STDLIB_DIR.fullmatch(parent) else None
    if name == "release" and parent.rpartition("/")[0] in JAVA_HOME_PARENTS:
        return _KEEP_SMALL
    if name == "rbconfig.rb":
        return _RUBY_SEARCH if RUBY_CONFIG_DIR.fullmatch(parent) else None
    if parent in _GO_BINARY_DIR_SET and not PYTHON_BINARY.fullmatch(name):
        return _GO_SEARCH
    if name[:2] not in _PATTERN_STARTS:
        return _dotnet(parent, name)
    if parent in _LIB_DIR_SET:
        return _PRESENCE if LIB_NAME.fullmatch(name) or LIBPYTHON.fullmatch(name) else None
    if parent in _BIN_DIR_SET:
        return _PRESENCE if PYTHON_BINARY.fullmatch(name) else None
    return None


def _dotnet(parent: str, name: str) -> CaptureRule | None:
    """The shared runtime's manifest, in a directory named by the runtime's version."""
    if name == "Microsoft.NETCore.App.deps.json" and parent.rpartition("/")[0] in DOTNET_RUNTIME_DIRS:
        return _PRESENCE
    return None
