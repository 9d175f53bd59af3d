"""The project eats its own cooking: CI's `distroguard check --dockerfile Dockerfile --policy
policies/python-base-images.yaml` passes, against a real Debian 13 image.

Docker Hub is out of reach here, so the base image is the stand-in for `python:3.13-slim-trixie` built
from real Debian trixie packages (support.python_image: downloaded once by apt into `.cache/debian/`),
layered as the official image is. It is pushed to the test registry as
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
from support.images import ImageBuilder, push
from support.python_image import PythonSlim, python_slim
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
POLICY = ROOT / "policies" / "python-base-images.yaml"


@pytest.fixture(scope="module")
def stand_in() -> PythonSlim:
    return python_slim()


def test_the_dockerfile_passes_its_own_policy(
    registry: RegistryServer, stand_in: PythonSlim, tmp_path: Path
) -> None:
    # What the downloaded packages are: the facts below must come from them.
    os_release = stand_in.os_release
    assert 'VERSION_ID="13"' in os_release
    assert "VERSION_CODENAME=trixie" in os_release
    glibc = stand_in.glibc_version
    assert glibc == "2.41"
    python_version = stand_in.python_version
    assert python_version.startswith("3.13.")

    (base,) = base_images(DOCKERFILE.read_text())
    ref = ImageRef.parse(base)
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/python", "3.13-slim-trixie")
    image = stand_in.image
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
    libc6 = stand_in.packages["libc6"].version
    assert any(f"libc6 {libc6}" in e["detail"] for e in libc_evidence), libc_evidence
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
