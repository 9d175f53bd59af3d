"""distroguard's own image, built from the project's Dockerfile by `scripts/build-image` (Debian's buildah,
no daemon), pushed to the test registry, judged by distroguard, and run as the chart runs it.

The Dockerfile's base, `python:3.13-slim-trixie`, is the stand-in built from real Debian trixie packages
(support.python_image), pushed to the test registry as `library/python:3.13-slim-trixie`; the script maps
docker.io to that registry. The build's pip downloads the locked dependencies from PyPI. The image is
built once for the module; the build time and size are printed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import distroguard
from distroguard.cli.main import main
from support.buildah import Buildah, BuildError, BuiltImage, build_image
from support.images import push
from support.python_image import REPOSITORY, TAG, PythonSlim, python_slim
from support.registry_server import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.slow]

POLICIES = Path(__file__).resolve().parents[2] / "policies"
#: The chart's runAsUser and runAsGroup, and the Dockerfile's USER.
RUN_AS = "65532:65532"


@pytest.fixture(scope="module")
def base() -> PythonSlim:
    return python_slim()


@pytest.fixture(scope="module")
def built(registry: RegistryServer, base: PythonSlim, request: pytest.FixtureRequest) -> BuiltImage:
    asyncio.run(push(registry.url, REPOSITORY, TAG, base.image))
    try:
        image = build_image(push_to=f"{registry.address}/distroguard:test", mirror=registry.address)
    except BuildError as exc:
        pytest.fail(str(exc))
    figures = (
        f"distroguard image: built in {image.seconds:.1f} s, {image.size / 1e6:.1f} MB uncompressed "
        f"({image.pushed})"
    )
    # Shown in every run, as CI's figures (the output of tests is captured otherwise).
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{figures}")
    return image


@pytest.fixture(scope="module")
def buildah() -> Iterator[Buildah]:
    with Buildah.temporary() as buildah:
        yield buildah


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_distroguard_sees_debian_13_glibc_2_41_and_python_3_13(built: BuiltImage, base: PythonSlim) -> None:
    assert 'VERSION_ID="13"' in base.os_release
    code, out, err = cli("inspect", built.pushed, "-o", "json")
    assert (code, err) == (0, ""), out
    facts = json.loads(out)
    assert facts["digest"] == built.pushed.rpartition("@")[2]
    assert (facts["os"]["id"], facts["os"]["version_id"], facts["os"]["codename"]) == (
        "debian",
        "13",
        "trixie",
    )
    assert facts["libc"] == {"family": "glibc", "version": "2.41"}
    assert base.glibc_version == "2.41"
    assert facts["runtimes"] == [{"name": "python", "version": base.python_version}]
    assert base.python_version.startswith("3.13.")
    # The size the registry holds (compressed layers and config), beside the uncompressed one.
    assert 0 < facts["image_size"] < built.size
    print(f"distroguard image: {facts['image_size'] / 1e6:.1f} MB in the registry (compressed)")  # -s


def test_the_projects_own_policies_admit_it(built: BuiltImage) -> None:
    code, out, err = cli("check", built.pushed, "--policy", str(POLICIES), "-o", "json")
    assert (code, err) == (0, ""), out
    checked = json.loads(out)
    assert checked["verdict"] == "allow", checked["findings"]
    assert checked["findings"] == []


def test_distroguard_runs_inside_as_65532_with_a_read_only_root(built: BuiltImage, buildah: Buildah) -> None:
    container = buildah.from_image(built.pushed)
    done = buildah.run_read_only(container, ["distroguard", "--version"], user=RUN_AS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"distroguard, version {distroguard.__version__}"

    # What it ran under: the user and group, and a root nothing can be written to.
    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "for path in ('/opt/distroguard/probe', '/tmp/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "        print(path, 'written')\n"
        "    except OSError as exc:\n"
        "        print(path, exc.strerror)\n"
        "root = [line.split() for line in open('/proc/self/mounts') if line.split()[1] == '/']\n"
        "print(root[-1][3].split(',')[0])\n"
    )
    done = buildah.run_read_only(container, ["python", "-c", probe], user=RUN_AS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "65532 65532",
        "/opt/distroguard/probe Read-only file system",
        "/tmp/probe Read-only file system",
        "ro",
    ]
    # The same probe with the root writable: the image's own permissions alone would let it write /tmp.
    done = buildah.run(container, ["python", "-c", probe], user=RUN_AS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "65532 65532",
        "/opt/distroguard/probe Permission denied",
        "/tmp/probe written",
        "rw",
    ]
