"""Every command reads the proxy environment once: a bad proxy URL is a usage error (exit 2) naming the
variable and never the password, and the proxies read reach the clients' settings."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from distroguard.cli import eol as eol_cli
from distroguard.cli.images import lookup_options
from distroguard.cli.main import main
from distroguard.eol.refresh import RefreshSettings
from distroguard.errors import CatalogUpdateError
from distroguard.model.lifecycle import CatalogSnapshot

POLICIES = Path(__file__).resolve().parents[2] / "policies"
BAD = {"HTTPS_PROXY": "socks5://alice:hunter2@proxy.corp:1080"}


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "registry.example.com/app:1"],
        ["check", "--policy", str(POLICIES), "registry.example.com/app:1"],
        ["eol", "update"],
        ["run", "--dev"],
    ],
)
def test_a_bad_proxy_stops_every_command_naming_the_variable(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, args, env={**BAD, "DISTROGUARD_EOL_CACHE": str(tmp_path / "eol.json")})
    assert result.exit_code == 2, result.output
    assert (
        "HTTPS_PROXY 'socks5://***@proxy.corp:1080': proxy scheme 'socks5' is not supported" in result.output
    )
    assert "hunter2" not in result.output
    assert "alice" not in result.output


def test_image_commands_carry_the_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", ".corp,bad..entry")
    with click.Context(main):
        options = lookup_options("linux/amd64", False, (), None, {})
    proxy = options.settings.proxies.proxy_for("https", "ghcr.io")
    assert proxy is not None
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert options.settings.proxies.proxy_for("https", "harbor.corp") is None


def test_eol_update_carries_the_proxies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    given: list[RefreshSettings] = []

    async def fetch(products: Any, settings: RefreshSettings, today: date) -> CatalogSnapshot:
        given.append(settings)
        raise CatalogUpdateError("stopped by the test")

    monkeypatch.setattr(eol_cli, "fetch_snapshot", fetch)
    env = {"https_proxy": "http://u:p@proxy.corp:3128", "NO_PROXY": "bad..entry"}
    result = CliRunner().invoke(main, ["eol", "update", "--cache", str(tmp_path / "eol.json")], env=env)
    assert result.exit_code == eol_cli.EXIT_ERROR
    assert "stopped by the test" in result.output
    assert "warning: NO_PROXY entry 'bad..entry' is not understood and ignored" in result.output
    (settings,) = given
    assert str(settings.proxy()) == "http://***@proxy.corp:3128"
