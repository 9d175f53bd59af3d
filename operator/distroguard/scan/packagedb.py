"""The package databases an image keeps, read from the squashed view: dpkg (`status`, distroless `status.d`),
apk (`installed`) and rpm (its summaries, `scan.rpm`). Shared by the C-library and runtime detectors.

Only what the capture rules kept is here: the stanzas of the packages that decide the C library and the
runtimes, never a whole database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from distroguard.scan.capture import APK_INSTALLED_PATHS, DPKG_STATUS, DPKG_STATUS_D, RPM_DB_PATHS
from distroguard.scan.rpm.packages import RpmSummary
from distroguard.scan.tree import FileRead, RootView

UPSTREAM = re.compile(r"(?:\d+:)?(\d+(?:\.\d+)+)")
# dpkg states in which the package's files are on disk.
DPKG_PRESENT = frozenset({"installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"})


def upstream(version: str) -> str | None:
    """The upstream version: 2.36-9+deb12u4 -> 2.36, 1:1.2.3-1 -> 1.2.3, 1.2.4_git1-r4 -> 1.2.4."""
    match = UPSTREAM.match(version.strip())
    return match.group(1) if match else None


def stanzas(content: bytes) -> Iterator[dict[str, str]]:
    """`Key: value` records separated by blank lines (dpkg), or `K:value` ones (apk)."""
    text = content.decode("utf-8", errors="replace").replace("\r\n", "\n")
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line[:1] in (" ", "\t"):
                continue  # a continuation line (dpkg Description, Conffiles): never needed here
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields:
                fields[key.strip()] = value.strip()
        if fields:
            yield fields


def rpm_databases(view: RootView) -> list[tuple[FileRead, RpmSummary]]:
    """The image's rpm databases (each file once, however many links lead to it), most specific first."""
    found: list[tuple[FileRead, RpmSummary]] = []
    seen: set[str] = set()
    for path in RPM_DB_PATHS:
        read = view.read(path)
        if read is None or read.path in seen:
            continue
        seen.add(read.path)
        try:
            found.append((read, RpmSummary.loads(read.content)))
        except (ValueError, KeyError, TypeError):
            continue  # not a summary the collector wrote: a file of that name outside the capture rule
    return found


def dpkg_files(view: RootView) -> list[FileRead]:
    """dpkg's database: `status`, and distroless's one file per package in `status.d`."""
    files = [view.read(DPKG_STATUS)]
    files += [view.read(f"{DPKG_STATUS_D}/{name}") for name in view.listdir(DPKG_STATUS_D)]
    return [found for found in files if found is not None]


def apk_files(view: RootView) -> list[FileRead]:
    """apk's database, each file once however many links lead to it (/lib and /usr/lib merged)."""
    found: dict[str, FileRead] = {}
    for path in APK_INSTALLED_PATHS:
        read = view.read(path)
        if read is not None:
            found.setdefault(read.path, read)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """One package a database lists: its manager (`dpkg`, `apk`, `rpm (sqlite)`...), name, version as the
    manager writes it, and the database file it was read from."""

    manager: str
    name: str
    version: str
    found: FileRead


def installed_packages(view: RootView) -> Iterator[InstalledPackage]:
    """The kept packages of every database in the image (each name once per manager, first entry wins)."""
    seen: set[tuple[str, str]] = set()
    for found in dpkg_files(view):
        for stanza in stanzas(found.content):
            name = stanza.get("Package", "")
            status = stanza.get("Status", "install ok installed").split()
            if name and status and status[-1] in DPKG_PRESENT and ("dpkg", name) not in seen:
                seen.add(("dpkg", name))
                yield InstalledPackage("dpkg", name, stanza.get("Version", ""), found)
    for found in apk_files(view):
        for stanza in stanzas(found.content):
            name = stanza.get("P", "")
            if name and ("apk", name) not in seen:
                seen.add(("apk", name))
                yield InstalledPackage("apk", name, stanza.get("V", ""), found)
    for found, summary in rpm_databases(view):
        manager = f"rpm ({summary.format})"
        for package in summary.packages:
            if (manager, package.name) not in seen:
                seen.add((manager, package.name))
                yield InstalledPackage(manager, package.name, package.evr, found)
