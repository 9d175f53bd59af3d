"""`inspect` and `check` with `--platform all` and lists: one result per platform, in JSON with `platform`
set, and `check`'s exit status failing when any platform fails; `--dockerfile` honouring `FROM --platform=`.
The images are multi-architecture indexes built and pushed to a real registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main
from support import multiarch
from support.images import BuiltImage, BuiltIndex, push
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

NO_MUSL = Path(__file__).resolve().parents[2] / "policies" / "no-musl.yaml"


def pushed(server: RegistryServer, repo: str, image: BuiltImage | BuiltIndex, tag: str) -> str:
    asyncio.run(push(server.url, repo, tag, image))
    return f"{server.address}/{repo}:{tag}"


def run(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    out = json.loads(result.stdout) if "-o" in args and result.stdout.strip() else result.stdout
    return result.exit_code, out, result.stderr


def test_inspect_all_gives_one_object_per_platform(registry: RegistryServer, repo: str) -> None:
    image = pushed(registry, repo, multiarch.with_attestations(), "mixed")
    code, out, err = run("inspect", image, "--platform", "all", "-o", "json")
    assert (code, err) == (0, "")
    by_platform = {item["platform"]: item for item in out}
    assert list(by_platform) == ["linux/amd64", "linux/arm64"]  # attestations (unknown/unknown) never
    assert by_platform["linux/amd64"]["os"]["id"] == "debian"
    assert by_platform["linux/amd64"]["libc"]["family"] == "glibc"
    assert by_platform["linux/arm64"]["os"]["id"] == "alpine"
    assert by_platform["linux/arm64"]["libc"]["family"] == "musl"
    index = multiarch.with_attestations()
    assert {item["digest"] for item in out} == {index.digest}
    assert [item["manifest_digest"] for item in out] == [i.digest for i in index.images]


def test_inspect_a_list_and_a_variant(registry: RegistryServer, repo: str) -> None:
    image = pushed(registry, repo, multiarch.arm_v7(), "v7")
    code, out, _ = run("inspect", image, "--platform", "linux/arm,linux/amd64", "-o", "json")
    assert code == 0
    assert [item["platform"] for item in out] == ["linux/amd64", "linux/arm/v7"]  # in the index's order


def test_a_listed_platform_the_image_lacks_is_an_error(registry: RegistryServer, repo: str) -> None:
    image = pushed(registry, repo, multiarch.arm64_only(), "arm")
    code, out, err = run("inspect", image, "--platform", "linux/amd64,linux/arm64", "-o", "json")
    assert code == 2
    assert [item["platform"] for item in out] == ["linux/arm64"]
    assert "no manifest for platform linux/amd64 (available: linux/arm64)" in err


def test_check_fails_when_any_platform_fails(registry: RegistryServer, repo: str) -> None:
    image = pushed(registry, repo, multiarch.mixed(), "mixed")
    code, out, err = run("check", image, "--policy", str(NO_MUSL), "--platform", "all", "-o", "json")
    assert (code, err) == (1, "")
    verdicts = {item["platform"]: item["verdict"] for item in out}
    assert verdicts == {"linux/amd64": "allow", "linux/arm64": "deny"}
    (denied,) = [item for item in out if item["verdict"] == "deny"]
    assert "musl" in denied["findings"][0]["message"]
    # The same image on its amd64 variant alone passes: the platform decides.
    code, out, _ = run("check", image, "--policy", str(NO_MUSL), "-o", "json")
    assert (code, out["platform"], out["verdict"]) == (0, "linux/amd64", "allow")


def test_check_table_names_each_platform(registry: RegistryServer, repo: str) -> None:
    image = pushed(registry, repo, multiarch.mixed(), "mixed")
    code, out, _ = run("check", image, "--policy", str(NO_MUSL), "--platform", "linux/amd64,linux/arm64")
    assert code == 1
    assert "ALLOW" in out
    assert "DENY" in out
    assert "linux/arm64: alpine" in out
    assert "linux/amd64: debian" in out


def test_dockerfile_from_platform_is_honoured(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    image = pushed(registry, repo, multiarch.mixed(), "mixed")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG ARCH=arm64\nFROM --platform=linux/$ARCH {image} AS app\nCOPY . /app\n")
    code, out, _ = run("check", "--dockerfile", str(dockerfile), "--policy", str(NO_MUSL), "-o", "json")
    assert (code, out["platform"], out["verdict"]) == (1, "linux/arm64", "deny")
    # A platform BuildKit fills in at build time pins nothing: --platform decides.
    dockerfile.write_text(f"FROM --platform=$BUILDPLATFORM {image}\n")
    code, out, _ = run("check", "--dockerfile", str(dockerfile), "--policy", str(NO_MUSL), "-o", "json")
    assert (code, out["platform"], out["verdict"]) == (0, "linux/amd64", "allow")


def test_bad_platform_list_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["inspect", "x", "--platform", "linux"])
    assert result.exit_code == 2
    assert "--platform" in result.stderr
