"""The pre-commit hook (`.pre-commit-hooks.yaml`), run by PyPI's pre-commit as its users run it:
`pre-commit try-repo` installs this repository into a virtualenv of its own and runs the hook on a
repository's staged Dockerfile, whose base image is on the test registry.

pre-commit installs the hook with pip; the dependencies come from a wheelhouse kept in the test-environment
cache (downloaded once, by pip, from the package index), so later runs install offline and quickly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT, ELF
from support.images import BuiltImage, ImageBuilder, push
from support.kube import CACHE_ENV, REPO_ROOT
from support.registry_server import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.slow]

HOOK = "distroguard-check"
NO_MUSL = REPO_ROOT / "policies" / "no-musl.yaml"


def python_on(root: dict[str, object]) -> BuiltImage:
    return (
        ImageBuilder()
        .layer(root)  # type: ignore[arg-type]
        .layer({"usr/local/bin/python3.12": ELF})
        .env("PYTHON_VERSION=3.12.8")
        .build()
    )


def wheelhouse() -> Path:
    """Wheels of distroguard's dependencies and build requirements for this Python, downloaded once."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    key = hashlib.sha256("\n".join([sys.version, *wanted]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get(CACHE_ENV) or REPO_ROOT / ".cache" / "testenv")
    target = cache / "wheelhouse" / key
    if not target.is_dir():
        partial = target.with_name(f"{key}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "-d",
                str(partial),
                *wanted,
            ],
            check=True,
            timeout=900,
        )
        partial.rename(target)
    return target


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with a policy where the hook looks by default (.distroguard/)."""
    repo = tmp_path / "project"
    (repo / ".distroguard").mkdir(parents=True)
    shutil.copy(NO_MUSL, repo / ".distroguard" / "no-musl.yaml")
    git(repo, "init", "-q")
    return repo


def try_repo(project: Path, tmp_path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    for name in files:
        git(project, "add", name)
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PIP_FIND_LINKS": str(wheelhouse()),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_COMPILE": "1",  # the kubernetes client alone is thousands of modules
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    # The hook runs the distroguard pre-commit installed, never this checkout's through PYTHONPATH.
    paths = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if not Path(p).resolve().is_relative_to(REPO_ROOT))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(REPO_ROOT),
            HOOK,
            "--verbose",
            "--files",
            *files,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_hook_checks_each_staged_dockerfile_and_fails_on_a_musl_base(
    registry: RegistryServer, repo: str, project: Path, tmp_path: Path
) -> None:
    asyncio.run(push(registry.url, repo, "alpine", python_on(ALPINE_ROOT)))
    asyncio.run(push(registry.url, repo, "debian", python_on(DEBIAN_12_ROOT)))
    (project / "app").mkdir()
    (project / "app" / "Dockerfile").write_text(
        f"# the app\nFROM {registry.address}/{repo}:alpine\nCOPY . /app\n"
    )
    (project / "Containerfile").write_text(f"FROM {registry.address}/{repo}:debian\n")
    (project / "README.md").write_text("not a Dockerfile\n")

    # One run (pre-commit installs the hook once per run): both files, and one the hook does not take.
    ran = try_repo(project, tmp_path, "app/Dockerfile", "Containerfile", "README.md")
    output = ran.stdout + ran.stderr
    assert ran.returncode == 1, output
    assert [line for line in output.splitlines() if line.startswith("== ")] == [
        "== app/Dockerfile",
        "== Containerfile",
    ]
    denied, allowed = output.split("== app/Dockerfile", 1)[1].split("== Containerfile", 1)
    assert "DENY" in denied
    assert "no-musl/no-musl" in denied
    assert "ALLOW" in allowed
    assert "DENY" not in allowed
