"""`distroguard check` in a pipeline: policies from `policies/`, images from a real registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT, ELF
from support.images import BuiltImage, ImageBuilder, push
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NO_MUSL = POLICIES / "no-musl.yaml"


def python_on(root: dict[str, object], version: str = "3.12.8") -> BuiltImage:
    return (
        ImageBuilder()
        .layer(root)  # type: ignore[arg-type]
        .layer({"usr/local/bin/python3.12": ELF})
        .env(f"PYTHON_VERSION={version}")
        .build()
    )


def pushed(server: RegistryServer, repo: str, image: BuiltImage, tag: str) -> str:
    asyncio.run(push(server.url, repo, tag, image))
    return f"{server.address}/{repo}:{tag}"


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_musl_is_denied_and_glibc_passes(registry: RegistryServer, repo: str) -> None:
    alpine = pushed(registry, repo, python_on(ALPINE_ROOT), "alpine")
    debian = pushed(registry, repo, python_on(DEBIAN_12_ROOT), "debian")
    code, out, err = check(alpine, debian, "--policy", str(NO_MUSL), "-o", "json")
    assert (code, err) == (1, "")
    results = {item["image"]: item for item in json.loads(out)}
    assert set(results[alpine]) == {"image", "platform", "digest", "facts", "verdict", "findings"}
    assert results[alpine]["verdict"] == "deny"
    assert results[alpine]["facts"]["libc"]["family"] == "musl"
    finding = results[alpine]["findings"][0]
    assert {"policy", "rule", "action", "severity", "message"} <= set(finding)
    assert finding["action"] == "deny"
    assert "musl" in finding["message"]
    assert (results[debian]["verdict"], results[debian]["findings"]) == ("allow", [])


def test_only_glibc_images_exit_0(registry: RegistryServer, repo: str) -> None:
    debian = pushed(registry, repo, python_on(DEBIAN_12_ROOT), "debian")
    code, out, _ = check(debian, "--policy", str(NO_MUSL))
    assert code == 0
    assert "ALLOW" in out


def test_fail_on_warn(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    policy = tmp_path / "warn-musl.yaml"
    policy.write_text(NO_MUSL.read_text().replace("action: deny", "action: warn"))
    alpine = pushed(registry, repo, python_on(ALPINE_ROOT), "alpine")
    assert check(alpine, "--policy", str(policy))[0] == 0
    assert check(alpine, "--policy", str(policy), "--fail-on", "warn")[0] == 1


def test_dockerfile_base_image_is_checked(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    alpine = pushed(registry, repo, python_on(ALPINE_ROOT), "alpine")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG BASE={alpine}\nFROM $BASE AS app\nCOPY . /app\n")
    code, out, _ = check("--dockerfile", str(dockerfile), "--policy", str(POLICIES), "-o", "json")
    assert code == 1
    result = json.loads(out)
    assert result["image"] == alpine
    assert any(f["policy"] == "no-musl" for f in result["findings"])


def test_errors_exit_2(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: distroguard.dev/v1alpha1\nkind: DistroPolicy\nmetadata: {name: x}\nspec: {bogus: 1}\n"
    )
    debian = pushed(registry, repo, python_on(DEBIAN_12_ROOT), "debian")
    code, _, err = check(debian, "--policy", str(bad))
    assert code == 2
    assert "bogus" in err
    code, _, err = check(f"{registry.address}/{repo}:missing", "--policy", str(NO_MUSL))
    assert code == 2
    assert err.startswith(f"error: {registry.address}/{repo}:missing")
