"""Which C library an image runs on: glibc, musl, none (static, scratch) or unknown; its version.

The evidence is weighed in this order, strongest first:

1. A package database that lists a C library (dpkg `libc6`, apk `musl` or `glibc`, rpm `glibc`). The
   distribution's own record beats file names, which is what gets the traps right: Alpine with
   gcompat has files named like glibc's (`ld-linux-x86-64.so.2`, `libc.so.6`) but apk lists
   `musl`; Ubuntu with the `musl` package has a musl loader but dpkg lists `libc6`.
2. The C library's files in the system library directories: glibc's banner in `libc.so.6`, the
   versioned names of glibc before 2.34 (`libc-2.28.so`, `ld-2.28.so`), the musl loader
   (`ld-musl-<arch>.so.1`), glibc's loaders. A real glibc always has its banner, so glibc-named
   files without it next to a musl loader are a shim, and the image is musl.
3. A package database that lists no C library: a static or distroless image, family "none". It beats
   the table (distroless static says Debian 12, and Debian 12 ships glibc, but this image has none).
4. The table of what each distribution release ships (`libc_table`), marked as such in the evidence;
   it also fills in the version when the files give only the family.
5. Nothing at all and no OS: scratch, "none". An OS the table does not know, or release files that
   name no distribution: "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distroguard.model import Evidence, Libc, LibcFamily, OSRelease
from distroguard.scan.capture import (
    LIB_DIRS,
    LIB_NAME,
    LIBC_BANNER,
    MUSL_LIB_DIRS,
    RELEASE_FILES,
)
from distroguard.scan.libc_table import lookup
from distroguard.scan.packagedb import DPKG_PRESENT, apk_files, dpkg_files, rpm_databases, stanzas, upstream
from distroguard.scan.rpm.packages import RpmSummary
from distroguard.scan.tree import FileRead, RootView


@dataclass(frozen=True, slots=True)
class _Verdict:
    family: LibcFamily
    version: str | None
    evidence: tuple[Evidence, ...]


def detect_libc(view: RootView, os: OSRelease | None) -> tuple[Libc, list[Evidence]]:
    """The image's C library and why; `os` lets the release table fill what the files leave open. An rpm
    database that could not be read is said so in the evidence, whatever decided."""
    libc, evidence = _detect(view, os)
    return libc, [*evidence, *_unread_rpm_databases(view)]


def _detect(view: RootView, os: OSRelease | None) -> tuple[Libc, list[Evidence]]:
    verdict = _settled(view)
    if verdict is not None:
        if verdict.version is None and verdict.family in ("glibc", "musl") and os is not None:
            shipped = lookup(os)
            if shipped is not None and shipped.family == verdict.family and shipped.version:
                return Libc(family=verdict.family, version=shipped.version), [
                    *verdict.evidence,
                    _table(f"{shipped.family} version shipped by {shipped.release}", "libc.version"),
                ]
        return Libc(family=verdict.family, version=verdict.version), list(verdict.evidence)
    if os is None:
        if any(view.exists(path) for path in RELEASE_FILES):
            # A release file naming nothing known is not the absence of an OS: say so, not "none".
            detail = "no C library found, and the release files name no distribution"
            return Libc(family="unknown"), [Evidence(fact="libc", source="scan", detail=detail)]
        detail = "no release file, no package database, no C library: scratch or static"
        return Libc(family="none"), [Evidence(fact="libc", source="scan", detail=detail)]
    shipped = lookup(os)
    if shipped is None:
        return Libc(family="unknown"), [
            Evidence(
                fact="libc",
                source="scan",
                detail=f"no C library file or package database, and no table entry for {os.id}",
            )
        ]
    evidence = [_table(f"no C library file or package database; {shipped.release} ships {shipped.family}")]
    if shipped.version is not None:
        evidence.append(_table(f"{shipped.family} version shipped by {shipped.release}", "libc.version"))
    return Libc(family=shipped.family, version=shipped.version), evidence


def libc_decided(view: RootView) -> bool:
    """Whether the files seen so far settle the libc family, so fast mode may stop reading layers.

    True exactly when `detect_libc` would answer without the release table: a package database lists
    a C library, a C library file is present (glibc banner, `libc-X.Y.so`/`ld-X.Y.so`, a glibc or
    musl loader), or a package database is present and lists none. Upper layers could then change
    the answer only by replacing the distribution's C library (or copying one into a static image),
    a risk fast mode accepts and says so. An image whose libc only the table would give is never
    decided: the streamer reads on, and the table answers at the end. The OS is not considered here.
    """
    return _settled(view) is not None


def _settled(view: RootView) -> _Verdict | None:
    databases = _package_databases(view)
    for database in databases:
        if database.verdict is not None:
            return database.verdict
    from_files = _from_files(view)
    if from_files is not None:
        return from_files
    if databases:
        return _Verdict(
            "none",
            None,
            tuple(
                _package_db(db.found, f"{db.kind} database lists no C library: static image")
                for db in databases
            ),
        )
    return None


def _table(detail: str, fact: str = "libc") -> Evidence:
    return Evidence(fact=fact, source="table", detail=detail)


def _package_db(found: FileRead, detail: str) -> Evidence:
    return Evidence(fact="libc", source="package-db", path=found.path, layer=found.layer, detail=detail)


# -- package databases ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Database:
    kind: str
    found: FileRead
    verdict: _Verdict | None = None


@dataclass(slots=True)
class _Package:
    name: str
    version: str
    found: FileRead


def _package_databases(view: RootView) -> list[_Database]:
    databases: list[_Database] = []
    dpkg = dpkg_files(view)
    if dpkg:
        databases.append(_Database("dpkg", dpkg[0], _dpkg_verdict(dpkg)))
    for found in apk_files(view):
        databases.append(_Database("apk", found, _apk_verdict(found)))
    rpm = _rpm_database(view)
    if rpm is not None:
        found, summary = rpm
        # A database read only in part cannot say "no C library": it counts only when it names one.
        verdict = _rpm_verdict(found, summary)
        if verdict is not None or summary.complete:
            databases.append(_Database(f"rpm ({summary.format})", found, verdict))
    return databases


def _rpm_database(view: RootView) -> tuple[FileRead, RpmSummary] | None:
    """The database rpm would use: the first readable one, else the first one."""
    databases = rpm_databases(view)
    readable = [entry for entry in databases if entry[1].error is None]
    chosen = readable or databases
    return chosen[0] if chosen else None


def _unread_rpm_databases(view: RootView) -> list[Evidence]:
    notes = []
    for found, summary in rpm_databases(view):
        if summary.complete:
            continue
        if summary.error is not None:
            what = f"rpm database not read ({summary.format}): {summary.error}"
        else:
            unread = f"{summary.unreadable} of {summary.headers}"
            what = f"rpm database ({summary.format}): {unread} headers unreadable"
        if summary.notes:
            what += f"; first: {summary.notes[0]}"
        notes.append(_package_db(found, what))
    return notes


def _rpm_verdict(found: FileRead, summary: RpmSummary) -> _Verdict | None:
    glibc = summary.find("glibc")
    if glibc is None:
        return None
    detail = f"rpm ({summary.format}): glibc {glibc.evr}" + (f" {glibc.arch}" if glibc.arch else "")
    return _Verdict("glibc", upstream(glibc.version), (_package_db(found, detail),))


def _dpkg_verdict(files: list[FileRead]) -> _Verdict | None:
    packages: dict[str, _Package] = {}
    for found in files:
        for stanza in stanzas(found.content):
            name = stanza.get("Package", "")
            status = stanza.get("Status", "install ok installed").split()
            # Distroless status.d files carry no Status field: their packages are installed.
            if name and status and status[-1] in DPKG_PRESENT:
                packages.setdefault(name, _Package(name, stanza.get("Version", ""), found))
    glibc = next((packages[n] for n in ("libc6", "libc6.1", "libc0.1", "libc0.3") if n in packages), None)
    musl = packages.get("musl")
    if glibc is not None:
        evidence = [_package_db(glibc.found, f"dpkg: {glibc.name} {glibc.version}")]
        if musl is not None:
            evidence.append(
                _package_db(
                    musl.found,
                    f"dpkg: musl {musl.version} too; its loader is for musl-built programs, "
                    "the system libc is glibc",
                )
            )
        return _Verdict("glibc", upstream(glibc.version), tuple(evidence))
    if musl is not None:
        return _Verdict(
            "musl",
            upstream(musl.version),
            (_package_db(musl.found, f"dpkg: musl {musl.version}"),),
        )
    return None


def _apk_verdict(found: FileRead) -> _Verdict | None:
    packages: dict[str, str] = {}
    for stanza in stanzas(found.content):
        name = stanza.get("P", "")
        if name:
            packages.setdefault(name, stanza.get("V", ""))
    if "musl" in packages:
        evidence = [_package_db(found, f"apk: musl {packages['musl']}")]
        for shim in ("gcompat", "libc6-compat"):
            if shim in packages:
                evidence.append(
                    _package_db(found, f"apk: {shim} too; its glibc-named files are shims over musl")
                )
        if "glibc" in packages:
            evidence.append(
                _package_db(found, f"apk: glibc {packages['glibc']} too, beside the system libc musl")
            )
        return _Verdict("musl", upstream(packages["musl"]), tuple(evidence))
    if "glibc" in packages:
        # Wolfi and Chainguard images: apk-managed, glibc-based.
        glibc = _package_db(found, f"apk: glibc {packages['glibc']}")
        return _Verdict("glibc", upstream(packages["glibc"]), (glibc,))
    return None


# -- files ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Files:
    """What the system library directories hold, first path of each kind."""

    banner: tuple[str, FileRead] | None = None
    versioned: tuple[str, str] | None = None
    glibc_named: list[str] = field(default_factory=list)
    musl: list[str] = field(default_factory=list)

    def add(self, view: RootView, directory: str, name: str) -> None:
        path = f"{directory}/{name}"
        if name == "libc.so.6":
            found = view.read(path)
            banner = LIBC_BANNER.search(found.content) if found is not None else None
            if banner is not None and found is not None:
                self.banner = self.banner or (banner.group(1).decode("ascii"), found)
            elif view.exists(path):
                self.glibc_named.append(path)
            return
        if name == "libc.so" and directory in MUSL_LIB_DIRS:
            if view.exists(path):
                self.musl.append(path)
            return
        match = LIB_NAME.fullmatch(name)
        if match is None or not view.exists(path):
            return
        version = match.group("libc_version") or match.group("ld_version")
        if version is not None:
            self.versioned = self.versioned or (version, path)
        elif match.group("glibc_loader"):
            self.glibc_named.append(path)
        else:
            self.musl.append(path)


def _file(path: str, detail: str) -> Evidence:
    return Evidence(fact="libc", source="file", path=path, detail=detail)


def _from_files(view: RootView) -> _Verdict | None:
    files = _Files()
    for directory in LIB_DIRS:
        for name in view.listdir(directory):
            files.add(view, directory, name)
    if files.banner is not None or files.versioned is not None:
        if files.banner is not None:
            version, found = files.banner
            evidence = [
                Evidence(
                    fact="libc",
                    source="file",
                    path=found.path,
                    layer=found.layer,
                    detail=f"glibc banner: release version {version}",
                )
            ]
        else:
            assert files.versioned is not None
            version, path = files.versioned
            evidence = [_file(path, f"glibc {version} by its file name")]
        if files.musl:
            evidence.append(
                _file(files.musl[0], "a musl loader too, for musl-built programs; system libc glibc")
            )
        return _Verdict("glibc", version, tuple(evidence))
    if files.musl:
        evidence = [_file(files.musl[0], "musl loader")]
        if files.glibc_named:
            evidence.append(_file(files.glibc_named[0], "glibc-named but no glibc banner: a shim over musl"))
        return _Verdict("musl", None, tuple(evidence))
    if files.glibc_named:
        return _Verdict("glibc", None, (_file(files.glibc_named[0], "glibc loader or libc.so.6"),))
    return None
