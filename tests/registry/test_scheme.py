"""Which scheme each registry gets (plain HTTP only for loopback and named hosts), and TLS with a
CA."""

from __future__ import annotations

import pytest

from distroguard.errors import RegistryError
from distroguard.registry.client import RegistryClient
from distroguard.registry.settings import RegistrySettings
from support.images import ImageBuilder, push
from support.registry_server import RegistryServer


@pytest.mark.parametrize(
    ("registry", "url"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.1.2.3", "http://127.1.2.3"),
        ("localhost:5000", "http://localhost:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("registry.example.com", "https://registry.example.com"),
        ("registry.example.com:5000", "https://registry.example.com:5000"),
        ("10.0.0.1:5000", "https://10.0.0.1:5000"),
        ("docker.io", "https://registry-1.docker.io"),
        ("index.docker.io", "https://registry-1.docker.io"),
        ("insecure.example.com:5000", "http://insecure.example.com:5000"),
        ("plain.example.com:8080", "http://plain.example.com:8080"),
        ("plain.example.com:9090", "https://plain.example.com:9090"),
    ],
)
def test_scheme_rule(registry: str, url: str) -> None:
    settings = RegistrySettings(
        insecure_registries=frozenset({"Insecure.example.com", "plain.example.com:8080"})
    )
    assert str(RegistryClient(settings).base_url(registry)) == url


def test_loopback_can_be_made_to_use_https() -> None:
    client = RegistryClient(RegistrySettings(plain_http_loopback=False))
    assert str(client.base_url("127.0.0.1:5000")) == "https://127.0.0.1:5000"
    client = RegistryClient(
        RegistrySettings(plain_http_loopback=False, insecure_registries=frozenset({"127.0.0.1"}))
    )
    assert str(client.base_url("127.0.0.1:5000")) == "http://127.0.0.1:5000"


@pytest.mark.registry
async def test_https_with_a_custom_ca(tls_registry: RegistryServer, repo: str) -> None:
    assert tls_registry.tls is not None
    context = tls_registry.tls.client_context()
    image = ImageBuilder().layer({"etc/os-release": "ID=debian\n"}).build()
    await push(tls_registry.url, repo, "1", image, ssl_context=context)
    settings = RegistrySettings(plain_http_loopback=False)
    async with RegistryClient(settings, ssl_context=context) as client:
        assert await client.head_digest(tls_registry.ref(repo, "1")) == image.digest
    async with RegistryClient(settings) as client:  # the system CAs do not know the test CA
        with pytest.raises(RegistryError, match="TLS failed"):
            await client.head_digest(tls_registry.ref(repo, "1"))
