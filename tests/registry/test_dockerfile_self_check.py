"""The project eats its own cooking: CI's `distroguard check --dockerfile Dockerfile --policy
policies/python-base-images.yaml` passes, against a real Debian 13 image.

Docker Hub is out of reach here, so the base image is rebuilt the way the official
`python:3.13-slim-trixie` is layered, from real Debian trixie packages (downloaded once by apt into
`.cache/debian/`, see support/debian_packages.py): base-files (its os-release), libc6 (its files and
the dpkg status entry dpkg would write), then the Python layer (python3.13-minimal's interpreter, the
`PYTHON_VERSION` and `PATH` the official image sets). It is pushed to the test registry as
`library/python:3.13-slim-trixie`, and the check runs through the CLI with
`--registry-mirror docker.io=<test registry>`, exactly as CI runs it otherwise.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from distroguard.cli.dockerfile import base_images
from distroguard.cli.main import main
from distroguard.model import ImageRef
from support.debian_packages import (
    DebianFetchError,
    DebPackage,
    dpkg_status,
    fetch_packages,
    read_deb,
    rootfs_tar,
)
from support.images import BuiltImage, ImageBuilder, push
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
POLICY = ROOT / "policies" / "python-base-images.yaml"
SUITE = "trixie"
PACKAGES = ("base-files", "libc6", "python3.13-minimal")


@pytest.fixture(scope="module")
def trixie() -> dict[str, DebPackage]:
    try:
        debs = fetch_packages(SUITE, PACKAGES)
    except DebianFetchError as exc:
        pytest.fail(f"the Debian {SUITE} packages could not be downloaded: {exc}")
    return {name: read_deb(path) for name, path in debs.items()}


def upstream(version: str) -> str:
    """`2.41-12+deb13u5` → `2.41`, `1:3.13.5-2` → `3.13.5`: the upstream part of a Debian version."""
    return version.partition(":")[2 if ":" in version else 0].rpartition("-")[0] or version


def python_slim(packages: dict[str, DebPackage]) -> BuiltImage:
    base_files, libc6, python = packages["base-files"], packages["libc6"], packages["python3.13-minimal"]
    python_version = upstream(python.version)
    # Layer 1, debian:trixie-slim's part: the file system of base-files and libc6, recorded by dpkg.
    base = rootfs_tar([base_files, libc6], extra={"var/lib/dpkg/status": dpkg_status([base_files, libc6])})
    # Layer 2, the Python image's part: the interpreter and the names the official image gives it.
    interpreter = rootfs_tar(
        [python],
        extra={"var/lib/dpkg/status": dpkg_status([base_files, libc6, python])},
        symlinks={
            "usr/local/bin/python3.13": "/usr/bin/python3.13",
            "usr/local/bin/python3": "python3.13",
            "usr/local/bin/python": "python3",
        },
    )
    return (
        ImageBuilder()
        .raw_layer(base, "gzip", created_by="debian:trixie-slim rootfs (base-files, libc6)")
        .raw_layer(interpreter, "gzip", created_by="python 3.13 (python3.13-minimal)")
        .env(
            "PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            f"PYTHON_VERSION={python_version}",
        )
        .config_fields(Cmd=["python3"])
        .build()
    )


def test_the_dockerfile_passes_its_own_policy(
    registry: RegistryServer, trixie: dict[str, DebPackage], tmp_path: Path
) -> None:
    # What the downloaded packages are: the facts below must come from them.
    os_release = trixie["base-files"].read("usr/lib/os-release").decode()
    assert 'VERSION_ID="13"' in os_release
    assert "VERSION_CODENAME=trixie" in os_release
    glibc = upstream(trixie["libc6"].version)
    assert glibc == "2.41"
    python_version = upstream(trixie["python3.13-minimal"].version)
    assert python_version.startswith("3.13.")

    (base,) = base_images(DOCKERFILE.read_text())
    ref = ImageRef.parse(base)
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/python", "3.13-slim-trixie")
    image = python_slim(trixie)
    digest = asyncio.run(push(registry.url, ref.repository, ref.tag, image))

    # The command CI runs, with the test registry standing in for Docker Hub.
    code, out, err = check(DOCKERFILE, registry)
    assert (code, err) == (0, ""), out
    checked = json.loads(out)
    assert checked["image"] == "python:3.13-slim-trixie"
    assert checked["digest"] == digest
    facts = checked["facts"]
    assert (facts["os"]["id"], facts["os"]["version_id"], facts["os"]["codename"]) == (
        "debian",
        "13",
        "trixie",
    )
    assert facts["libc"] == {"family": "glibc", "version": glibc}
    assert facts["runtimes"] == [{"name": "python", "version": python_version}]
    libc_evidence = [e for e in facts["evidence"] if e["fact"].startswith("libc")]
    assert any(f"libc6 {trixie['libc6'].version}" in e["detail"] for e in libc_evidence), libc_evidence
    # Nothing to warn about either: the policy's every rule passes.
    assert (checked["verdict"], checked["findings"]) == ("allow", [])

    # The same layers announcing an end-of-life Python are denied: the policy really judged the image.
    old = ImageBuilder()
    for layer, history in zip(image.layers, ("debian rootfs", "python"), strict=True):
        old.raw_layer(layer.tar, "gzip", created_by=history)
    old.env("PATH=/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION=3.8.20")
    asyncio.run(push(registry.url, ref.repository, "3.8-slim-trixie", old.build()))
    old_dockerfile = tmp_path / "Dockerfile"
    old_dockerfile.write_text("FROM python:3.8-slim-trixie\n")
    code, out, _ = check(old_dockerfile, registry)
    assert code == 1, out
    denied = json.loads(out)
    assert denied["verdict"] == "deny"
    assert {f["rule"] for f in denied["findings"] if f["action"] == "deny"} == {"supported-python"}


def check(dockerfile: Path, registry: RegistryServer) -> tuple[int, str, str]:
    """`distroguard check --dockerfile D --policy policies/python-base-images.yaml -o json`, Docker Hub
    mirrored by the test registry: (exit code, stdout, stderr).
    """
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--dockerfile",
            str(dockerfile),
            "--policy",
            str(POLICY),
            "--registry-mirror",
            f"docker.io={registry.address}",
            "-o",
            "json",
        ],
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
