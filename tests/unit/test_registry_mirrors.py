"""Registry mirrors: `SOURCE=MIRROR` parsing, the (registry, repository) mapping, and the settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from distroguard.cli.images import lookup_options
from distroguard.cli.main import main
from distroguard.model import ImageRef
from distroguard.registry.client import RegistryClient
from distroguard.registry.hosts import mirrored, parse_mirror, parse_mirrors
from distroguard.registry.settings import RegistrySettings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker.io=127.0.0.1:5000", ("docker.io", "127.0.0.1:5000")),
        ("docker.io=Mirror.Example.com", ("docker.io", "mirror.example.com")),
        ("index.docker.io=mirror.example.com:443", ("docker.io", "mirror.example.com:443")),
        ("registry-1.docker.io=m.example.com", ("docker.io", "m.example.com")),
        ("ghcr.io=harbor.example.com/ghcr-proxy", ("ghcr.io", "harbor.example.com/ghcr-proxy")),
        ("Quay.IO=harbor.example.com/a/b-c/", ("quay.io", "harbor.example.com/a/b-c")),
        ("localhost:5000=[::1]:5001", ("localhost:5000", "[::1]:5001")),
    ],
)
def test_parse_mirror(text: str, expected: tuple[str, str]) -> None:
    assert parse_mirror(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("docker.io", "expected SOURCE=MIRROR"),
        ("=mirror.example.com", "expected SOURCE=MIRROR"),
        ("docker.io=", "expected SOURCE=MIRROR"),
        ("docker.io/library=mirror.example.com", "must be a registry host"),
        ("https://docker.io=mirror.example.com", "must be a registry host"),
        ("docker.io=https://mirror.example.com", "without a scheme"),
        ("docker.io=mirror.example.com:99999", "out of range"),
        ("docker.io=mirror.example.com:0", "out of range"),
        ("docker.io=mirror.example.com/Proxy", "lowercase repository path"),
        ("docker.io=mirror.example.com/a//b", "lowercase repository path"),
        ("docker.io=mir ror.example.com", "is not a host"),
        ("docker.io=-bad.example.com", "is not a host"),
    ],
)
def test_bad_mirrors_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_mirror(text)


MIRRORS = {"docker.io": "127.0.0.1:5000", "ghcr.io": "harbor.example.com/ghcr-proxy"}


@pytest.mark.parametrize(
    ("registry", "repository", "expected"),
    [
        ("docker.io", "library/python", ("127.0.0.1:5000", "library/python")),
        ("index.docker.io", "library/python", ("127.0.0.1:5000", "library/python")),
        ("ghcr.io", "org/app", ("harbor.example.com", "ghcr-proxy/org/app")),
        ("quay.io", "org/app", ("quay.io", "org/app")),
        ("127.0.0.1:5000", "library/python", ("127.0.0.1:5000", "library/python")),
    ],
)
def test_mirrored(registry: str, repository: str, expected: tuple[str, str]) -> None:
    assert mirrored(registry, repository, MIRRORS) == expected


def test_no_mirrors_changes_nothing() -> None:
    assert mirrored("docker.io", "library/python", {}) == ("docker.io", "library/python")


def test_settings_fold_sources_and_check_mirrors() -> None:
    settings = RegistrySettings(registry_mirrors={"https://index.docker.io/v1/": "Mirror.Local:5000"})
    assert dict(settings.registry_mirrors) == {"docker.io": "mirror.local:5000"}
    assert hash(settings) == hash(RegistrySettings(registry_mirrors={"docker.io": "mirror.local:5000"}))
    assert settings == RegistrySettings(registry_mirrors={"docker.io": "mirror.local:5000"})
    assert settings != RegistrySettings()
    with pytest.raises(ValueError, match="given twice"):
        RegistrySettings(registry_mirrors={"docker.io": "a.example.com", "index.docker.io": "b.example.com"})
    with pytest.raises(ValueError, match="without a scheme"):
        RegistrySettings(registry_mirrors={"docker.io": "http://a.example.com"})
    with pytest.raises(ValueError, match="not a registry host"):
        RegistrySettings(registry_mirrors={" ": "a.example.com"})


def test_client_routes_references_to_the_mirror() -> None:
    client = RegistryClient(RegistrySettings(registry_mirrors=MIRRORS))
    hub = ImageRef.parse("python:3.13-slim-trixie")
    routed = client.route(hub)
    assert (routed.registry, routed.repository, routed.tag) == (
        "127.0.0.1:5000",
        "library/python",
        "3.13-slim-trixie",
    )
    pinned = ImageRef.parse("ghcr.io/org/app@sha256:" + "a" * 64)
    assert client.route(pinned) == ImageRef(
        registry="harbor.example.com", repository="ghcr-proxy/org/app", tag=None, digest="sha256:" + "a" * 64
    )
    other = ImageRef.parse("quay.io/org/app:1")
    assert client.route(other) is other
    assert RegistryClient().route(hub) is hub


def test_lookup_options_take_mirrors_given_explicitly() -> None:
    options = lookup_options("linux/amd64", False, (), None, {"index.docker.io": "127.0.0.1:5000"})
    assert dict(options.settings.registry_mirrors) == {"docker.io": "127.0.0.1:5000"}
    assert dict(lookup_options("linux/amd64", False, (), None).settings.registry_mirrors) == {}


@pytest.mark.parametrize("command", ["inspect", "check", "audit"])
def test_every_image_command_refuses_a_bad_mirror(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--registry-mirror", "docker.io", "x"])
    assert result.exit_code == 2
    assert "--registry-mirror" in result.stderr
    assert "expected SOURCE=MIRROR" in result.stderr


def test_two_mirrors_for_one_source_are_refused() -> None:
    result = CliRunner().invoke(
        main,
        [
            "inspect",
            "--registry-mirror",
            "docker.io=a.example.com",
            "--registry-mirror",
            "index.docker.io=b.example.com",
        ],
    )
    assert result.exit_code == 2
    assert "docker.io is given two mirrors" in result.stderr


def test_parse_mirrors_takes_a_pair_twice_but_not_two_mirrors_for_one_source() -> None:
    assert parse_mirrors(["docker.io=m.example.com", "index.docker.io=m.example.com"]) == {
        "docker.io": "m.example.com"
    }
    with pytest.raises(ValueError, match=r"docker\.io is given two mirrors"):
        parse_mirrors(["docker.io=m.example.com", "docker.io=n.example.com"])


def test_run_refuses_two_mirrors_for_one_source_naming_the_option() -> None:
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--dev",
            "--registry-mirror",
            "docker.io=a.example.com",
            "--registry-mirror",
            "docker.io=b.example.com",
        ],
    )
    assert result.exit_code == 2
    assert "--registry-mirror" in result.output
    assert "docker.io is given two mirrors" in result.output
