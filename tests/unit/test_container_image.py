"""The project's own Dockerfile and lock files follow the advice distroguard enforces.

Read with distroguard's Dockerfile parser (the one `check --dockerfile` uses): the official Python image
on the current Debian stable, several stages with a clean final one, a numeric non-root user that is
the chart's, no HEALTHCHECK, nothing compiled or installed in the final stage; and every pin of the
lock files exact, hashed, and one of pyproject's dependencies or something they need.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from distroguard.cli.dockerfile import _logical_lines, base_images, stages

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "distroguard"
#: Debian 13 "trixie" is the current stable release (see policies/python-base-images.yaml).
CURRENT_DEBIAN_STABLE = "trixie"
BASE = re.compile(rf"python:3\.(?P<minor>1[3-9])-slim-{CURRENT_DEBIAN_STABLE}(?:@sha256:[0-9a-f]{{64}})?")
COMPILERS = re.compile(
    r"\b(gcc|g\+\+|cc|c\+\+|clang|build-essential|make|cmake|gfortran|rustc|cargo|python3-dev|libc6-dev)\b"
)
#: The image's markers: CPython 3.13 on Linux.
TARGET = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "extra": "",
}


def instructions(text: str) -> list[list[tuple[str, str]]]:
    """(KEYWORD, arguments) of each stage, as the parser splits logical lines."""
    by_stage: list[list[tuple[str, str]]] = []
    for _, line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            by_stage.append([])
        if by_stage:
            by_stage[-1].append((keyword.upper(), rest.strip()))
    return by_stage


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_final_stage_is_the_official_python_image_on_debian_stable(dockerfile: str) -> None:
    (final,) = base_images(dockerfile)
    assert BASE.fullmatch(final), final
    # The build stage starts from the same image: what is built is built against the same libc.
    assert base_images(dockerfile, all_stages=True) == [final]


def test_multi_stage_with_a_clean_final_stage(dockerfile: str) -> None:
    found = stages(dockerfile)
    assert len(found) >= 2
    names = {stage.name for stage in found if stage.name}
    final = found[-1]
    assert final.base.lower() not in names, "the final stage must start clean, not from the build stage"
    final_steps = instructions(dockerfile)[-1]
    copies = [args for keyword, args in final_steps if keyword == "COPY"]
    assert copies, "the final stage copies the built environment"
    assert all(args.startswith("--from=") for args in copies), copies
    assert [k for k, _ in final_steps if k in ("RUN", "ADD")] == [], "nothing is built in the final stage"


def test_runs_as_the_charts_numeric_non_root_user(dockerfile: str) -> None:
    final_steps = instructions(dockerfile)[-1]
    users = [args for keyword, args in final_steps if keyword == "USER"]
    assert users, "the final stage sets USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), users[-1]
    assert int(user) != 0, users[-1]
    assert not group or group.isdigit()
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(rf"runAsUser: {user}\b", deployment), "the chart runs the same UID"
    assert "readOnlyRootFilesystem: true" in deployment


def test_entrypoint_is_the_charts_command(dockerfile: str) -> None:
    final_steps = instructions(dockerfile)[-1]
    entrypoints = [args for keyword, args in final_steps if keyword == "ENTRYPOINT"]
    assert entrypoints
    assert yaml.safe_load(entrypoints[-1]) == ["distroguard"]
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert 'command: ["distroguard"]' in deployment
    env = " ".join(args for keyword, args in final_steps if keyword == "ENV")
    # The root file system is read-only: Python must not try to write bytecode there.
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_no_healthcheck_the_chart_has_the_probes(dockerfile: str) -> None:
    keywords = [keyword for stage in instructions(dockerfile) for keyword, _ in stage]
    assert "HEALTHCHECK" not in keywords
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert {"readinessProbe:", "livenessProbe:", "startupProbe:"} <= set(deployment.split())


def test_no_compilers_anywhere_and_installs_only_from_the_locks(dockerfile: str) -> None:
    for stage in instructions(dockerfile):
        for keyword, args in stage:
            if keyword == "RUN":
                assert not COMPILERS.search(args), args
                assert "apt-get install" not in args, args
                assert "apk add" not in args, args
    runs = " ".join(args for stage in instructions(dockerfile) for keyword, args in stage if keyword == "RUN")
    for lock in ("requirements.lock", "requirements-build.lock"):
        installs = [part for part in runs.split("&&") if f"-r {lock}" in part]
        assert installs, f"{lock} is installed"
        for install in installs:
            assert "--require-hashes" in install, install
            assert "--only-binary=:all:" in install, install
            assert "--no-deps" in install, install
    assert "--no-cache-dir" in runs or "PIP_NO_CACHE_DIR=1" in dockerfile


def test_dockerignore_keeps_the_context_to_what_is_copied() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    kept = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for stage in instructions(DOCKERFILE.read_text()):
        for keyword, args in stage:
            if keyword == "COPY" and not args.startswith("--from="):
                copied.update(part.rstrip("/") for part in args.split()[:-1])
    assert copied == kept


# ---------------------------------------------------------------------- lock files


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """canonical name -> (version, hashes) of a `pip install --require-hashes` file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)", requirement)
        assert match, f"{path.name}: {requirement!r} is not an exact pin"
        hashes = [option.removeprefix("--hash=") for option in options]
        assert options, f"{path.name}: {requirement} has no hashes"
        assert all(option.startswith("--hash=sha256:") for option in options), line
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), line
        key = canonicalize_name(match.group(1))
        assert key not in pins, f"{path.name}: {key} pinned twice"
        pins[key] = (match.group(2), hashes)
    return pins


def applies(requirement: Requirement, extras: frozenset[str] = frozenset()) -> bool:
    marker: Marker | None = requirement.marker
    return marker is None or any(marker.evaluate({**TARGET, "extra": e}) for e in {"", *extras})


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_runtime_dependency_is_pinned_within_its_range(pyproject: dict[str, object]) -> None:
    pins = read_lock(ROOT / "requirements.lock")
    project = pyproject["project"]
    assert isinstance(project, dict)
    for text in project["dependencies"]:
        requirement = Requirement(text)
        if not applies(requirement):
            continue
        key = canonicalize_name(requirement.name)
        assert key in pins, f"{requirement.name} is a dependency but not in requirements.lock"
        assert requirement.specifier.contains(pins[key][0], prereleases=True), (text, pins[key][0])


def test_every_pin_is_a_dependency_or_needed_by_one(pyproject: dict[str, object]) -> None:
    """No stray pins: each is a direct dependency, or required by another pin (as installed here)."""
    pins = read_lock(ROOT / "requirements.lock")
    project = pyproject["project"]
    assert isinstance(project, dict)
    needed: set[str] = set()
    queue = [Requirement(text) for text in project["dependencies"]]
    while queue:
        requirement = queue.pop()
        if not applies(requirement):
            continue
        key = canonicalize_name(requirement.name)
        if key in needed and not requirement.extras:
            continue
        needed.add(key)
        queue += [
            child
            for child in map(Requirement, metadata.requires(requirement.name) or [])
            if applies(child, frozenset(requirement.extras))
        ]
    assert set(pins) == needed, {"stray": set(pins) - needed, "missing": needed - set(pins)}


def test_build_tools_are_pyprojects_build_requirements(pyproject: dict[str, object]) -> None:
    pins = read_lock(ROOT / "requirements-build.lock")
    build = pyproject["build-system"]
    assert isinstance(build, dict)
    for text in build["requires"]:
        requirement = Requirement(text)
        key = canonicalize_name(requirement.name)
        assert key in pins, f"{requirement.name} is a build requirement but not in requirements-build.lock"
        assert requirement.specifier.contains(pins[key][0], prereleases=True), (text, pins[key][0])
