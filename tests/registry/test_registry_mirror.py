"""`--registry-mirror`: images of another registry (Docker Hub here) fetched from the test registry.

The references keep naming the source registry (`docker.io/...`): nothing here may reach Docker Hub,
so a request that went to the source instead of the mirror would fail the test (no network).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main
from distroguard.errors import AuthenticationError
from distroguard.model import ImageRef, Platform
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver import Resolver
from support.distros import debian_python_image
from support.images import push
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer

pytestmark = pytest.mark.registry


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_inspect_through_a_mirror_reports_the_source_reference(registry: RegistryServer, repo: str) -> None:
    image = debian_python_image()
    digest = asyncio.run(push(registry.url, repo, "1", image))
    reference = f"docker.io/{repo}:1"
    code, out, err = cli(
        "inspect", reference, "-o", "json", "--registry-mirror", f"docker.io={registry.address}"
    )
    assert (code, err) == (0, "")
    facts = json.loads(out)
    assert facts["reference"] == reference
    assert facts["digest"] == digest == image.digest
    assert (facts["os"]["id"], facts["os"]["version_id"]) == ("debian", "12")
    assert facts["libc"] == {"family": "glibc", "version": "2.36"}


def test_a_mirror_prefix_goes_in_front_of_the_repository(registry: RegistryServer, repo: str) -> None:
    image = debian_python_image()
    asyncio.run(push(registry.url, f"hub-proxy/{repo}", "1", image))
    mirror = f"index.docker.io={registry.address}/hub-proxy"
    code, out, err = cli("inspect", f"docker.io/{repo}:1", "-o", "json", "--registry-mirror", mirror)
    assert (code, err) == (0, "")
    assert json.loads(out)["digest"] == image.digest
    # Without the prefix the mirror has no such repository: the prefix really was used above.
    code, _, err = cli("inspect", f"docker.io/{repo}:1", "--registry-mirror", f"docker.io={registry.address}")
    assert code == 2
    assert f"registry {registry.address}" in err
    assert f"manifest docker.io/{repo}:1: not found" in err


def test_check_through_a_mirror(registry: RegistryServer, repo: str) -> None:
    asyncio.run(push(registry.url, repo, "1", debian_python_image()))
    reference = f"docker.io/{repo}:1"
    code, out, _ = cli(
        "check",
        reference,
        "--policy",
        "policies/no-musl.yaml",
        "-o",
        "json",
        "--registry-mirror",
        f"docker.io={registry.address}",
    )
    assert code == 0
    result = json.loads(out)
    assert (result["image"], result["verdict"]) == (reference, "allow")


def resolve(server: RegistryServer, store: CredentialStore, reference: str) -> str:
    async def run() -> str:
        settings = RegistrySettings(registry_mirrors={"docker.io": server.address})
        async with RegistryClient(settings, store) as client:
            facts = await Resolver(client).resolve(reference, Platform.parse("linux/amd64"), "fast")
            return facts.digest

    return asyncio.run(run())


def test_the_mirrors_credentials_are_used_never_the_sources(
    basic_registry: RegistryServer, repo: str
) -> None:
    image = debian_python_image()
    asyncio.run(push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth))
    right = Credentials(TEST_USER, TEST_PASSWORD)
    reference = f"docker.io/{repo}:1"
    assert resolve(basic_registry, CredentialStore({basic_registry.address: right}), reference) == (
        image.digest
    )
    # The right password, but stored for the source registry: it must not be sent to the mirror.
    with pytest.raises(AuthenticationError, match="none are configured") as caught:
        resolve(basic_registry, CredentialStore({"https://index.docker.io/v1/": right}), reference)
    assert caught.value.registry == basic_registry.address


def test_requests_are_counted_for_the_mirror(registry: RegistryServer, repo: str) -> None:
    image = debian_python_image()
    asyncio.run(push(registry.url, repo, "1", image))

    async def run() -> tuple[str, set[str]]:
        settings = RegistrySettings(registry_mirrors={"docker.io": registry.address})
        async with RegistryClient(settings) as client:
            digest = await client.head_digest(ImageRef.parse(f"docker.io/{repo}:1"))
            return digest, {registry for registry, _ in client.stats.requests}

    digest, registries = asyncio.run(run())
    assert digest == image.digest
    assert registries == {registry.address}
