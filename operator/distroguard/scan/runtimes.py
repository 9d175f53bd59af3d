"""Language runtimes an image carries: from the config's Env first, from its files second.

Official language images announce their runtime in Env (`PYTHON_VERSION=3.12.4`, `NODE_VERSION=...`), which
costs no layer bytes and is what the image's builder installed. When both exist, Env wins. The files answer
for what Env does not announce, each runtime from its strongest evidence (every item names file and layer):

- Python: a pythonX.Y in /usr/local/bin, the packages (dpkg `python3.X`, apk `python3`, rpm `python3.X`),
  pythonX.Y in /usr/bin or /bin, `libpython3.X.so*`, the standard library's `os.py`;
- Node.js: the packages, an official build's release URL in the `node` binary, `node_version.h`;
- Java: the JDK's or JRE's `release` file, then the packages;
- Go: the build information in binaries where Go programs are put (/ko-app, /app, /usr/local/bin), then
  the toolchain's packages: a static Go image has a runtime to judge;
- Ruby: the packages, then `rbconfig.rb`; PHP: the packages, then `php_version.h`; .NET: its shared
  runtime's versioned directory, then the packages.

What the capture rules keep of these files is small (presence, a search match, a small file), but they are
only seen in the layers that are read: in fast mode, the bottom layers up to where OS and C library are
decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from distroguard.model import Evidence, Runtime
from distroguard.scan.capture import (
    BIN_DIRS,
    DOTNET_RUNTIME_DIRS,
    GO_BINARY_DIRS,
    GO_BUILDINFO,
    JAVA_HOME_PARENTS,
    JAVA_HOMES,
    LIB_DIRS,
    LIBPYTHON,
    NODE_BINARIES,
    NODE_RELEASE_URL,
    NODE_VERSION_HEADERS,
    PHP_VERSION_HEADERS,
    PYTHON_BINARY,
    PYTHON_STDLIB_DIR,
    RUBY_PROGRAM_VERSION,
)
from distroguard.scan.packagedb import InstalledPackage, installed_packages, upstream
from distroguard.scan.tree import FileRead, RootView

# Env variable -> runtime name, as the official images set them; the first of a name wins.
_ENV_RUNTIMES = (
    ("PYTHON_VERSION", "python"),
    ("NODE_VERSION", "nodejs"),
    ("JAVA_VERSION", "java"),
    ("GOLANG_VERSION", "go"),
    ("GO_VERSION", "go"),
    ("RUBY_VERSION", "ruby"),
    ("PHP_VERSION", "php"),
    ("RUST_VERSION", "rust"),
    ("DOTNET_VERSION", "dotnet"),
    ("OTP_VERSION", "erlang"),
    ("ELIXIR_VERSION", "elixir"),
)
_VERSION = re.compile(r"\d[0-9A-Za-z.+~_-]*")
# Java: "jdk-21.0.5+11" and "21.0.5+11" are 21.0.5; Java 8 writes "jdk8u422-b05" / "8u422", which
# is 8.0.422 in the numbering every later release uses.
_JAVA_8 = re.compile(r"(?:jdk-?)?(\d+)u(\d+)")
_JAVA = re.compile(r"(?:jdk-?)?(\d+(?:\.\d+)*)")


def detect_runtimes(
    env: Sequence[str], view: RootView | None, programs: Sequence[str] = ()
) -> tuple[list[Runtime], list[Evidence]]:
    """Runtimes and their evidence, one per name, sorted by name; Env over files. `programs`: where the
    image's own program may be (its Entrypoint), read first for Go build information."""
    found: dict[str, tuple[Runtime, Evidence]] = {}
    for name, item in _from_env(env).items():
        found[name] = item
    if view is not None:
        for name, item in _from_files(view, programs).items():
            found.setdefault(name, item)
    ordered = sorted(found.values(), key=lambda item: item[0].name)
    return [runtime for runtime, _ in ordered], [evidence for _, evidence in ordered]


def _from_env(env: Sequence[str]) -> dict[str, tuple[Runtime, Evidence]]:
    values: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            values[key] = value  # a later definition wins, as when the image runs
    result: dict[str, tuple[Runtime, Evidence]] = {}
    for key, name in _ENV_RUNTIMES:
        if name in result or key not in values:
            continue
        version = _normalise(name, values[key])
        if version is None:
            continue
        evidence = Evidence(
            fact=f"runtime.{name}",
            source="config",
            path=f"Env:{key}",
            detail=f"{key}={values[key]}",
        )
        result[name] = (Runtime(name=name, version=version), evidence)
    return result


def _normalise(name: str, raw: str) -> str | None:
    """The version a policy compares, or None for a value that is not one ("", "latest")."""
    value = raw.strip().removeprefix("v")
    if name == "java":
        java_8 = _JAVA_8.match(value)
        if java_8:
            return f"{java_8.group(1)}.0.{java_8.group(2)}"
        java = _JAVA.match(value)
        return java.group(1) if java else None
    return value if _VERSION.fullmatch(value) else None


def _from_files(view: RootView, programs: Sequence[str]) -> dict[str, tuple[Runtime, Evidence]]:
    """Each runtime the files show, by the strongest evidence for it (see each detector)."""
    packages = list(installed_packages(view))
    found: dict[str, tuple[Runtime, Evidence]] = {}
    go = _go_program(view, programs)
    if go is not None:
        found["go"] = go
    for name, detector in _DETECTORS:
        if name in found:
            continue
        item = detector(view, packages)
        if item is not None:
            found[name] = item
    return found


def _first_match(
    view: RootView, paths: Iterable[str], pattern: re.Pattern[bytes]
) -> tuple[FileRead, re.Match[bytes]] | None:
    """The first of `paths` whose kept content `pattern` matches, and the match."""
    for path in paths:
        found = view.read(path)
        match = pattern.search(found.content) if found is not None else None
        if found is not None and match is not None:
            return found, match
    return None


def _evidence(name: str, source: str, found: FileRead | str, detail: str) -> Evidence:
    if isinstance(found, FileRead):
        return Evidence(
            fact=f"runtime.{name}", source=source, path=found.path, layer=found.layer, detail=detail
        )
    return Evidence(fact=f"runtime.{name}", source=source, path=found, detail=detail)


def _package(
    name: str, packages: list[InstalledPackage], wanted: re.Pattern[str], version: Callable[[str], str | None]
) -> tuple[Runtime, Evidence] | None:
    """The first listed package whose name `wanted` matches, and the version it gives."""
    for package in packages:
        if wanted.fullmatch(package.name):
            found = version(package.version)
            if found is not None:
                detail = f"{package.manager}: {package.name} {package.version}"
                return Runtime(name=name, version=found), _evidence(name, "package-db", package.found, detail)
    return None


_PYTHON_PACKAGES = re.compile(r"python3\.\d+(?:-minimal|-libs)?|python3\d*(?:-libs)?|libpython3\.\d+")


def _python(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """What `python3` runs: a pythonX.Y in /usr/local/bin first (PATH order; the official images build one
    there), then the packages (which give the patch version), then pythonX.Y in /usr/bin or /bin, then
    libpython, then the standard library's directory."""
    binaries = _python_binaries(view)
    from_package = _package("python", packages, _PYTHON_PACKAGES, _python_version)
    local = binaries.get("/usr/local/bin")
    if local is not None:
        # The same minor version packaged (a link to the distribution's Python): the package has the patch.
        same = from_package is not None and _minor(from_package[0].version) == local[0].version
        return from_package if same and from_package is not None else local
    if from_package is not None:
        return from_package
    for directory in BIN_DIRS:
        if directory in binaries:
            return binaries[directory]
    for directory in LIB_DIRS:
        for entry in sorted(view.listdir(directory)):
            match = LIBPYTHON.fullmatch(entry)
            if match and view.exists(f"{directory}/{entry}"):
                version = f"{match['major']}.{match['minor']}"
                path = f"{directory}/{entry}"
                return Runtime(name="python", version=version), _evidence("python", "file", path, entry)
    for parent in ("/usr/local/lib", "/usr/lib"):
        for entry in sorted(view.listdir(parent), reverse=True):
            path = f"{parent}/{entry}/os.py"
            match = PYTHON_STDLIB_DIR.fullmatch(f"{parent}/{entry}")
            if match and view.exists(path):
                version = f"{match['major']}.{match['minor']}"
                detail = f"the standard library of Python {version}"
                return Runtime(name="python", version=version), _evidence("python", "file", path, detail)
    return None


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _python_version(raw: str) -> str | None:
    version = upstream(raw)
    return version if version is not None and version.startswith("3.") else None


def _python_binaries(view: RootView) -> dict[str, tuple[Runtime, Evidence]]:
    """Per bin directory, its newest pythonX.Y."""
    found: dict[str, tuple[Runtime, Evidence]] = {}
    for directory in BIN_DIRS:
        versions: list[tuple[tuple[int, int], str]] = []
        for name in view.listdir(directory):
            match = PYTHON_BINARY.fullmatch(name)
            if match and view.exists(f"{directory}/{name}"):
                versions.append(((int(match.group("major")), int(match.group("minor"))), name))
        if versions:
            (major, minor), name = max(versions)
            evidence = _evidence("python", "file", f"{directory}/{name}", f"{name} in {directory}")
            found[directory] = (Runtime(name="python", version=f"{major}.{minor}"), evidence)
    return found


_NODE_PACKAGES = re.compile(r"nodejs(?:-current|\d+)?")
_NODE_DEFINE = re.compile(rb"#define\s+NODE_(MAJOR|MINOR|PATCH)_VERSION\s+(\d+)")


def _node(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The packages, then an official build's release URL inside the binary, then node_version.h."""
    from_package = _package("nodejs", packages, _NODE_PACKAGES, upstream)
    if from_package is not None:
        return from_package
    hit = _first_match(view, NODE_BINARIES, NODE_RELEASE_URL)
    if hit is not None:
        found, match = hit
        version = match.group(1).decode()
        detail = f"release URL in the binary: {match.group(0).decode()}"
        return Runtime(name="nodejs", version=version), _evidence("nodejs", "file", found, detail)
    for path in NODE_VERSION_HEADERS:
        header = view.read(path)
        if header is None:
            continue
        parts = {key.decode(): value.decode() for key, value in _NODE_DEFINE.findall(header.content)}
        if {"MAJOR", "MINOR", "PATCH"} <= parts.keys():
            version = f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"
            detail = f"node_version.h: {version}"
            return Runtime(name="nodejs", version=version), _evidence("nodejs", "file", header, detail)
    return None


_JAVA_RELEASE = re.compile(rb'^JAVA_VERSION="([^"\n]{1,40})"', re.MULTILINE)
_JAVA_PACKAGES = re.compile(
    r"openjdk-\d+-(?:jre|jdk)(?:-headless)?|java-[\d.]+-openjdk(?:-headless)?|openjdk\d+(?:-jre(?:-headless)?|-jdk)?"
)


def _java(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The JDK's or JRE's `release` file (the running Java's own words), then the packages."""
    homes = list(JAVA_HOMES)
    for parent in JAVA_HOME_PARENTS:
        homes += [f"{parent}/{entry}" for entry in sorted(view.listdir(parent))]
    for home in homes:
        found = view.read(f"{home}/release")
        match = _JAVA_RELEASE.search(found.content) if found is not None else None
        version = _normalise("java", match.group(1).decode(errors="replace")) if match else None
        if found is not None and match is not None and version is not None:
            detail = f"JAVA_VERSION={match.group(1).decode(errors='replace')}"
            return Runtime(name="java", version=version), _evidence("java", "file", found, detail)
    return _package("java", packages, _JAVA_PACKAGES, _java_package_version)


def _java_package_version(raw: str) -> str | None:
    """17.0.9+9-1~deb12u1 -> 17.0.9, 1:21.0.5.0.11-2.el9 -> 21.0.5, 17.0.9_p9-r0 -> 17.0.9,
    8u422-b05-1 -> 8.0.422."""
    value = raw.split(":", 1)[-1]
    java_8 = re.match(r"(?:1\.)?8u(\d+)", value)
    if java_8:
        return f"8.0.{java_8.group(1)}"
    match = re.match(r"(\d+(?:\.\d+){0,2})", value)
    return match.group(1) if match else None


_GO_PACKAGES = re.compile(r"golang-\d+\.\d+-go|golang|go")


def _go(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The build information every Go binary since 1.18 embeds (what the binary was built with), then the
    packages of a Go toolchain."""
    for directory in GO_BINARY_DIRS:
        for entry in sorted(view.listdir(directory)):
            found = view.read(f"{directory}/{entry}")
            version = go_buildinfo_version(found.content) if found is not None else None
            if found is not None and version is not None:
                detail = f"Go build information: go{version}"
                return Runtime(name="go", version=version), _evidence("go", "file", found, detail)
    return _package("go", packages, _GO_PACKAGES, upstream)


def _go_program(view: RootView, programs: Sequence[str]) -> tuple[Runtime, Evidence] | None:
    """The image's own program, when it is a Go binary: its build information."""
    for path in programs:
        found = view.read(path)
        version = go_buildinfo_version(found.content) if found is not None else None
        if found is not None and version is not None:
            detail = f"Go build information of the image's program: go{version}"
            return Runtime(name="go", version=version), _evidence("go", "file", found, detail)
    return None


def go_buildinfo_version(captured: bytes) -> str | None:
    """The Go version in a captured build-information header (`GO_BUILDINFO`'s match): `1.22.5`; None
    for a development build or a length that does not fit."""
    match = GO_BUILDINFO.match(captured)
    if match is None:
        return None
    length = match.group(1)[0]
    text = match.group(2)[:length].decode("ascii", errors="replace")
    version = re.fullmatch(r"go(\d+\.\d+(?:\.\d+)?)(?:[a-z]+\d*)?", text)
    return version.group(1) if version else None


_RUBY_PACKAGES = re.compile(r"ruby\d+\.\d+|ruby(?:-libs)?")
_PHP_PACKAGES = re.compile(r"php\d+\.\d+-(?:cli|common)|php\d*(?:-cli)?")
_DOTNET_PACKAGES = re.compile(r"dotnet-runtime-\d+\.\d+|dotnet\d+-runtime")


def _ruby(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The packages, then `rbconfig.rb`'s RUBY_PROGRAM_VERSION (the ruby images build it into /usr/local)."""
    from_package = _package("ruby", packages, _RUBY_PACKAGES, upstream)
    if from_package is not None:
        return from_package
    for parent in (
        "/usr/local/lib/ruby",
        "/usr/lib/ruby",
        *(f"{d}/ruby" for d in LIB_DIRS if "-linux-" in d),
    ):
        for found in _rbconfigs(view, parent):
            match = RUBY_PROGRAM_VERSION.search(found.content)
            if match is not None:
                version = match.group(1).decode()
                detail = f"rbconfig.rb: RUBY_PROGRAM_VERSION {version}"
                return Runtime(name="ruby", version=version), _evidence("ruby", "file", found, detail)
    return None


def _rbconfigs(view: RootView, parent: str) -> list[FileRead]:
    """`rbconfig.rb` files under `parent`/X.Y.Z[/arch], newest version directory first."""
    found: list[FileRead] = []
    versions = [e for e in view.listdir(parent) if re.fullmatch(r"\d+\.\d+\.\d+", e)]
    for version in sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")), reverse=True):
        directory = f"{parent}/{version}"
        for path in [
            f"{directory}/rbconfig.rb",
            *(f"{directory}/{a}/rbconfig.rb" for a in view.listdir(directory)),
        ]:
            read = view.read(path)
            if read is not None:
                found.append(read)
    return found


_PHP_DEFINE = re.compile(rb'#define\s+PHP_VERSION\s+"(\d+\.\d+\.\d+)')


def _php(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The packages, then `php_version.h` (the php images ship PHP's headers)."""
    from_package = _package("php", packages, _PHP_PACKAGES, upstream)
    if from_package is not None:
        return from_package
    hit = _first_match(view, PHP_VERSION_HEADERS, _PHP_DEFINE)
    if hit is not None:
        found, match = hit
        version = match.group(1).decode()
        detail = f"php_version.h: {version}"
        return Runtime(name="php", version=version), _evidence("php", "file", found, detail)
    return None


def _dotnet(view: RootView, packages: list[InstalledPackage]) -> tuple[Runtime, Evidence] | None:
    """The shared runtime's directory (named by its version), then the packages."""
    for parent in DOTNET_RUNTIME_DIRS:
        versions = [e for e in view.listdir(parent) if re.fullmatch(r"\d+\.\d+\.\d+", e)]
        for entry in sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")), reverse=True):
            path = f"{parent}/{entry}/Microsoft.NETCore.App.deps.json"
            if view.exists(path):
                detail = f"shared runtime Microsoft.NETCore.App {entry}"
                return Runtime(name="dotnet", version=entry), _evidence("dotnet", "file", path, detail)
    return _package("dotnet", packages, _DOTNET_PACKAGES, upstream)


_DETECTORS: tuple[
    tuple[str, Callable[[RootView, list[InstalledPackage]], tuple[Runtime, Evidence] | None]], ...
] = (
    ("python", _python),
    ("nodejs", _node),
    ("java", _java),
    ("go", _go),
    ("ruby", _ruby),
    ("php", _php),
    ("dotnet", _dotnet),
)
