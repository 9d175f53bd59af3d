"""Which distribution an image is: os-release first, then the older release files, BusyBox last.

The order is what the files' authors intended: os-release(5) is the one standard, so it wins
whenever it names an ID; the distribution-specific files (lsb-release, debian_version,
alpine-release, the Red Hat family's `*-release`, SuSE-release) only speak for images too old or too
stripped to have it. A file that exists but says nothing usable is noted in the evidence and
skipped, never guessed from.

IDs and VERSION_IDs are reported as the file writes them (`ol`, `amzn`, `opensuse-leap`, `12`), so a
policy matches what `cat /etc/os-release` shows; what the file does not say (a Debian point release,
CentOS Stream, a distroless image) is recorded in the evidence rather than folded into the ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from distroguard.model import Evidence, OSRelease
from distroguard.scan.capture import (
    ALPINE_RELEASE,
    BUSYBOX_BANNER,
    BUSYBOX_PATHS,
    DEBIAN_VERSION,
    LSB_RELEASE,
    OS_RELEASE_PATHS,
    REDHAT_RELEASE,
    REDHAT_RELEASE_FILES,
    SUSE_RELEASE,
    SYSTEM_RELEASE_CPE,
    UPSTREAM_LSB_RELEASE,
)
from distroguard.scan.tree import FileRead, RootView

# -- the os-release format ------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# In double quotes the shell only lets a backslash escape these; before anything else it is literal.
_DOUBLE_QUOTE_ESCAPES = frozenset('"\\$`')


def parse_os_release(content: bytes) -> dict[str, str]:
    """`KEY=value` assignments with shell quoting, as os-release(5) and lsb-release are written.

    Values may be unquoted, 'single-quoted' (literal) or "double-quoted" (backslash escapes `"`,
    `\\`, `$` and backtick), or a concatenation of those. Blank lines, `#` comments, CRLF endings
    and indentation are ignored, as are lines that are not an assignment to a valid name (`export
    X=1` included: os-release is not a script). Invalid UTF-8 is replaced, not fatal; a later
    assignment wins, as in the shell.
    """
    text = content.decode("utf-8", errors="replace").removeprefix("\ufeff")
    fields: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        if sep and _KEY.fullmatch(key):
            fields[key] = _shell_word(rest)
    return fields


def _shell_word(text: str) -> str:
    """The value of one shell word; an unterminated quote runs to the end of the line."""
    out: list[str] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == "'":
            close = text.find("'", i + 1)
            close = end if close < 0 else close
            out.append(text[i + 1 : close])
            i = close + 1
        elif char == '"':
            i += 1
            while i < end and text[i] != '"':
                if text[i] == "\\" and i + 1 < end and text[i + 1] in _DOUBLE_QUOTE_ESCAPES:
                    i += 1
                out.append(text[i])
                i += 1
            i += 1
        elif char == "\\":
            out.append(text[i + 1 : i + 2])
            i += 2
        elif char.isspace():
            break  # an unquoted blank ends the value; what follows is a comment or junk
        else:
            out.append(char)
            i += 1
    return "".join(out)


# -- detection ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    os: OSRelease
    evidence: list[Evidence]


class _Reader:
    """Reads each resolved file once, and keeps the notes about files that were skipped."""

    def __init__(self, view: RootView) -> None:
        self.view = view
        self.notes: list[Evidence] = []
        self._seen: set[str] = set()

    def read(self, path: str) -> FileRead | None:
        """The file, unless missing or already consulted through another name (a symlink)."""
        found = self.view.read(path)
        if found is None or found.path in self._seen:
            return None
        self._seen.add(found.path)
        return found

    def skip(self, found: FileRead, why: str) -> None:
        self.notes.append(_evidence(found, f"ignored: {why}"))


def _evidence(found: FileRead, detail: str) -> Evidence:
    return Evidence(fact="os", source="file", path=found.path, layer=found.layer, detail=detail)


def detect_os(view: RootView) -> tuple[OSRelease | None, list[Evidence]]:
    """The image's distribution and why; None when no file names one (scratch, static images)."""
    reader = _Reader(view)
    for source in (
        _from_os_release,
        _from_lsb_release,
        _from_debian_version,
        _from_alpine_release,
        _from_redhat_release,
        _from_system_release_cpe,
        _from_suse_release,
        _from_busybox,
    ):
        found = source(reader)
        if found is not None:
            return found.os, [*found.evidence, *reader.notes]
    return None, reader.notes


def _first_line(content: bytes) -> str:
    return content.decode("utf-8", errors="replace").strip().split("\n", 1)[0].strip()


# -- os-release -----------------------------------------------------------------------------------


def _from_os_release(reader: _Reader) -> _Found | None:
    for path in OS_RELEASE_PATHS:
        found = reader.read(path)
        if found is None:
            continue
        fields = parse_os_release(found.content)
        os_id = fields.get("ID", "").strip()
        if not os_id:
            reader.skip(found, "no ID= in it")
            continue
        version_id = fields.get("VERSION_ID", "").strip() or None
        name = fields.get("NAME", "").strip()
        pretty_name = fields.get("PRETTY_NAME", "").strip() or None
        detail = f"ID={os_id} VERSION_ID={version_id or '(none)'}"
        evidence = [_evidence(found, f"{detail} NAME={name!r}" if name else detail)]
        codename, codename_evidence = _codename(reader, os_id, fields)
        evidence += codename_evidence
        if os_id == "debian":
            version_id, point_evidence = _debian_point_release(reader, version_id)
            evidence += point_evidence
        evidence += _remarks(found, os_id, name, pretty_name)
        os = OSRelease(
            id=os_id,
            version_id=version_id,
            codename=codename,
            pretty_name=pretty_name,
            id_like=tuple(fields.get("ID_LIKE", "").split()),
        )
        return _Found(os, evidence)
    return None


# Releases whose VERSION carries the codename: "8 (jessie)", "16.04.1 LTS (Xenial Xerus)" and the
# older Ubuntu form "14.04.3 LTS, Trusty Tahr".
_CODENAME_IN_VERSION = frozenset({"debian", "ubuntu", "raspbian"})
_VERSION_CODENAME = re.compile(r"[(,]\s*([A-Za-z]+)")


def _codename(reader: _Reader, os_id: str, fields: dict[str, str]) -> tuple[str | None, list[Evidence]]:
    """VERSION_CODENAME, else UBUNTU_CODENAME, else VERSION's word, else a matching lsb-release."""
    for key in ("VERSION_CODENAME", "UBUNTU_CODENAME"):
        value = fields.get(key, "").strip()
        if value:
            return value, []
    if os_id in _CODENAME_IN_VERSION:
        match = _VERSION_CODENAME.search(fields.get("VERSION", ""))
        if match:
            return match.group(1).lower(), []
    # lsb-release may describe another distribution than os-release does (Linux Mint's says
    # LinuxMint/rosa over Ubuntu 14.04's os-release), so it counts only when its DISTRIB_ID agrees.
    for path in (LSB_RELEASE, UPSTREAM_LSB_RELEASE):
        found = reader.view.read(path)
        if found is None:
            continue
        lsb = parse_os_release(found.content)
        codename = lsb.get("DISTRIB_CODENAME", "").strip()
        if codename and _lsb_id(lsb) == os_id:
            return codename, [_evidence(found, f"codename {codename} from DISTRIB_CODENAME")]
    return None, []


_NUMERIC_VERSION = re.compile(r"\d+(?:\.\d+)*")


def _debian_point_release(reader: _Reader, version_id: str | None) -> tuple[str | None, list[Evidence]]:
    """/etc/debian_version holds the point release (12.5) that os-release's VERSION_ID (12) omits.

    VERSION_ID stays what os-release says, so a policy sees the same value for every 12.x image; the
    point release goes into the evidence. Only an os-release without VERSION_ID (old distroless)
    takes its version from debian_version.
    """
    found = reader.read(DEBIAN_VERSION)
    if found is None:
        return version_id, []
    text = _first_line(found.content)
    if not _NUMERIC_VERSION.fullmatch(text):
        return version_id, [_evidence(found, f"{text!r}: testing/unstable, no point release")]
    if version_id is None:
        return text, [_evidence(found, f"VERSION_ID {text} from debian_version")]
    if text == version_id or text.startswith(f"{version_id}."):
        return version_id, [_evidence(found, f"Debian point release {text}")]
    return version_id, [
        _evidence(found, f"debian_version says {text}, os-release {version_id}: os-release kept")
    ]


def _remarks(found: FileRead, os_id: str, name: str, pretty_name: str | None) -> list[Evidence]:
    """What the ID alone hides, recorded where a person reading the evidence will find it."""
    remarks: list[Evidence] = []
    if os_id == "debian" and (pretty_name or "").lower().startswith("distroless"):
        remarks.append(_evidence(found, "distroless image (PRETTY_NAME=Distroless) on Debian"))
    if os_id == "centos" and "stream" in f"{name} {pretty_name or ''}".lower():
        remarks.append(_evidence(found, "CentOS Stream, not CentOS Linux (same ID=centos)"))
    return remarks


# -- lsb-release ----------------------------------------------------------------------------------

# DISTRIB_ID spellings that differ from the os-release ID of the same distribution.
_LSB_IDS = {
    "redhatenterpriseserver": "rhel",
    "redhatenterpriseworkstation": "rhel",
    "redhatenterpriseclient": "rhel",
    "redhatenterprisecomputenode": "rhel",
    "enterpriseenterpriseserver": "ol",
    "oracleserver": "ol",
    "amazonami": "amzn",
    "scientificsl": "scientific",
    "suse": "sles",
}


def _lsb_id(fields: dict[str, str]) -> str:
    raw = "".join(fields.get("DISTRIB_ID", "").split()).lower()
    return _LSB_IDS.get(raw, raw)


def _from_lsb_release(reader: _Reader) -> _Found | None:
    found = reader.read(LSB_RELEASE)
    if found is None:
        return None
    fields = parse_os_release(found.content)
    os_id = _lsb_id(fields)
    if not os_id:
        reader.skip(found, "no DISTRIB_ID in it")
        return None
    version_id = fields.get("DISTRIB_RELEASE", "").strip() or None
    os = OSRelease(
        id=os_id,
        version_id=version_id,
        codename=fields.get("DISTRIB_CODENAME", "").strip() or None,
        pretty_name=fields.get("DISTRIB_DESCRIPTION", "").strip() or None,
    )
    return _Found(os, [_evidence(found, f"DISTRIB_ID={os_id} DISTRIB_RELEASE={version_id}")])


# -- debian_version, alpine-release ---------------------------------------------------------------


def _from_debian_version(reader: _Reader) -> _Found | None:
    found = reader.read(DEBIAN_VERSION)
    if found is None:
        return None
    text = _first_line(found.content)
    # "12.5" is a release; "bookworm/sid" is testing/unstable (or Ubuntu): Debian, but no version.
    version_id = text if _NUMERIC_VERSION.fullmatch(text) else None
    pretty_name = f"Debian {text}" if text else None
    os = OSRelease(id="debian", version_id=version_id, pretty_name=pretty_name)
    return _Found(os, [_evidence(found, f"debian_version {text!r}")])


_ALPINE_VERSION = re.compile(r"\d+\.\d+[\w.]*")


def _from_alpine_release(reader: _Reader) -> _Found | None:
    found = reader.read(ALPINE_RELEASE)
    if found is None:
        return None
    text = _first_line(found.content)
    version_id = text if _ALPINE_VERSION.fullmatch(text) else None
    os = OSRelease(id="alpine", version_id=version_id, pretty_name=f"Alpine Linux {text}".strip())
    return _Found(os, [_evidence(found, f"alpine-release {text!r}")])


# -- the Red Hat family ---------------------------------------------------------------------------

# "<Name> release <version> (<codename>)", e.g. "CentOS Linux release 7.6.1810 (Core)".
_RELEASE_LINE = re.compile(r"(?P<name>.+?)\s+release\s+(?P<version>\d[\w.]*)", re.IGNORECASE)
# Name prefixes (lowercase) to os-release IDs; the first match wins, so longer prefixes come first.
_RELEASE_NAMES = (
    ("oracle linux", "ol"),
    # Oracle Enterprise Linux 5: "Enterprise Linux Enterprise Linux Server release 5.11 (Carthage)".
    ("enterprise linux", "ol"),
    ("centos", "centos"),
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("fedora", "fedora"),
    # Also the pre-RHEL "Red Hat Linux release 6.2 (Zoot)", as other scanners read it.
    ("red hat", "rhel"),
    ("scientific linux", "scientific"),
    ("amazon linux", "amzn"),
    ("cloudlinux", "cloudlinux"),
    ("eurolinux", "eurolinux"),
    ("virtuozzo", "virtuozzo"),
    ("mageia", "mageia"),
)


def _release_id(name: str) -> str | None:
    lowered = name.lower()
    return next((os_id for prefix, os_id in _RELEASE_NAMES if lowered.startswith(prefix)), None)


def _from_redhat_release(reader: _Reader) -> _Found | None:
    for path in REDHAT_RELEASE_FILES:
        found = reader.read(path)
        if found is None:
            continue
        line = _first_line(found.content)
        match = _RELEASE_LINE.match(line)
        os_id = _release_id(match.group("name")) if match else None
        if match is None or os_id is None:
            reader.skip(found, f"{line!r} names no distribution known here")
            continue
        evidence = [_evidence(found, repr(line))]
        if os_id == "centos" and "stream" in line.lower():
            evidence.append(_evidence(found, "CentOS Stream, not CentOS Linux (same ID=centos)"))
        evidence += _overruled_redhat_release(reader, found, os_id)
        os = OSRelease(id=os_id, version_id=match.group("version"), pretty_name=line)
        return _Found(os, evidence)
    return None


def _overruled_redhat_release(reader: _Reader, chosen: FileRead, os_id: str) -> list[Evidence]:
    """Say so when redhat-release names another distribution (Oracle Linux's claims to be RHEL)."""
    other = reader.view.read(REDHAT_RELEASE)
    if other is None or other.path == chosen.path:
        return []
    line = _first_line(other.content)
    match = _RELEASE_LINE.match(line)
    if match is None or _release_id(match.group("name")) == os_id:
        return []
    return [_evidence(other, f"ignored: {line!r}; the vendor's own {chosen.path} wins")]


# CPE vendor -> os-release ID, for /etc/system-release-cpe ("cpe:/o:centos:linux:6:GA").
_CPE_VENDORS = {
    "almalinux": "almalinux",
    "amazon": "amzn",
    "centos": "centos",
    "fedoraproject": "fedora",
    "oracle": "ol",
    "redhat": "rhel",
    "rocky": "rocky",
    "scientificlinux": "scientific",
}


def _from_system_release_cpe(reader: _Reader) -> _Found | None:
    found = reader.read(SYSTEM_RELEASE_CPE)
    if found is None:
        return None
    cpe = _first_line(found.content)
    # CPE 2.2 "cpe:/o:vendor:product:version:update" or CPE 2.3 "cpe:2.3:o:vendor:product:version".
    parts = cpe.removeprefix("cpe:2.3:").removeprefix("cpe:/").split(":")
    os_id = _CPE_VENDORS.get(parts[1]) if len(parts) > 1 else None
    if os_id is None:
        reader.skip(found, f"{cpe!r} names no vendor known here")
        return None
    version_id = parts[3] if len(parts) > 3 and parts[3] else None
    # Oracle writes the minor release as the CPE update: "cpe:/o:oracle:linux:7:5:server" is 7.5.
    if os_id == "ol" and version_id and len(parts) > 4 and parts[4].isdigit():
        version_id = f"{version_id}.{parts[4]}"
    os = OSRelease(id=os_id, version_id=version_id)
    return _Found(os, [_evidence(found, repr(cpe))])


# -- SuSE-release, BusyBox ------------------------------------------------------------------------

_SUSE_FIELD = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$", re.MULTILINE)
_SUSE_NAMES = (
    ("suse linux enterprise desktop", "sled"),
    ("suse linux enterprise", "sles"),
    ("opensuse", "opensuse"),
)


def _from_suse_release(reader: _Reader) -> _Found | None:
    found = reader.read(SUSE_RELEASE)
    if found is None:
        return None
    text = found.content.decode("utf-8", errors="replace")
    line = _first_line(found.content)
    os_id = next((i for prefix, i in _SUSE_NAMES if line.lower().startswith(prefix)), None)
    if os_id is None:
        reader.skip(found, f"{line!r} names no distribution known here")
        return None
    fields = dict(_SUSE_FIELD.findall(text))
    version = fields.get("VERSION") or next(iter(re.findall(r"\d+(?:\.\d+)?", line)), None)
    patch = fields.get("PATCHLEVEL", "0")
    # os-release writes SLES 12 SP1 as VERSION_ID 12.1; keep SuSE-release's numbers the same way.
    version_id = f"{version}.{patch}" if version and patch not in ("", "0") else version
    os = OSRelease(id=os_id, version_id=version_id, pretty_name=line)
    return _Found(os, [_evidence(found, repr(line))])


def _from_busybox(reader: _Reader) -> _Found | None:
    for path in BUSYBOX_PATHS:
        found = reader.read(path)
        if found is None:
            continue
        match = BUSYBOX_BANNER.search(found.content)
        if match is None:
            continue
        version = match.group(1).decode("ascii")
        os = OSRelease(id="busybox", version_id=version, pretty_name=f"BusyBox v{version}")
        return _Found(os, [_evidence(found, f"BusyBox v{version} banner; no release file")])
    return None
