"""Basic and bearer-token authentication against the real registry, credentials from files and
secrets."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from distroguard.errors import AuthenticationError, InsecureRegistryError
from distroguard.model import Platform
from distroguard.registry import client as client_module
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.source import RegistrySource
from support.images import BuiltImage, ImageBuilder, push
from support.proxy import CountingProxy
from support.registry_server import RegistryServer
from support.token_server import TokenServer

pytestmark = pytest.mark.registry


def _image() -> BuiltImage:
    return ImageBuilder().layer({"etc/os-release": "ID=debian\n"}).build()


def _store(server: RegistryServer, password: str | None = None) -> CredentialStore:
    assert server.username is not None
    assert server.password is not None
    creds = Credentials(server.username, password if password is not None else server.password)
    return CredentialStore({server.address: creds})


# ---------------------------------------------------------------------- basic


async def test_basic_auth_with_the_right_credentials(basic_registry: RegistryServer, repo: str) -> None:
    image = _image()
    await push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth)
    async with RegistryClient(credentials=_store(basic_registry)) as client:
        source = RegistrySource(client, basic_registry.ref(repo, "1"))
        resolved = await source.resolve(Platform())
        layer = await source.read_blob(resolved.manifest.layers[0], max_bytes=1 << 20)
    assert resolved.manifest_digest == image.digest
    assert layer == image.layers[0].data


async def test_basic_auth_with_a_wrong_password(basic_registry: RegistryServer, repo: str) -> None:
    bad = "not-the-password-9f2c"
    async with RegistryClient(credentials=_store(basic_registry, bad)) as client:
        with pytest.raises(AuthenticationError, match=r"credentials of 'tester' were refused") as caught:
            await client.head_digest(basic_registry.ref(repo, "1"))
    assert caught.value.registry == basic_registry.address
    assert bad not in str(caught.value)


async def test_basic_auth_without_credentials(basic_registry: RegistryServer, repo: str) -> None:
    async with RegistryClient() as client:
        with pytest.raises(AuthenticationError, match="none are configured"):
            await client.head_digest(basic_registry.ref(repo, "1"))


# ---------------------------------------------------------------------- bearer


@pytest.fixture
def tokens(token_server: TokenServer) -> Iterator[TokenServer]:
    expires_in = token_server.expires_in
    yield token_server
    token_server.expires_in = expires_in
    token_server.refresh_tokens.clear()


async def test_bearer_flow_and_token_caching(
    token_registry: RegistryServer, tokens: TokenServer, repo: str
) -> None:
    image = _image()
    await push(token_registry.url, repo, "1", image, auth=token_registry.push_auth)
    await push(token_registry.url, f"{repo}-b", "1", image, auth=token_registry.push_auth)
    before = tokens.count()
    async with RegistryClient(credentials=_store(token_registry)) as client:
        for _ in range(3):
            await RegistrySource(client, token_registry.ref(repo, "1")).resolve(Platform())
        assert tokens.count() - before == 1  # one token for the repository, reused
        await client.head_digest(token_registry.ref(f"{repo}-b", "1"))
        assert tokens.count() - before == 2  # another repository, another scope
    asked = tokens.requests[before:]
    assert [r.scopes for r in asked] == [
        (f"repository:{repo}:pull",),
        (f"repository:{repo}-b:pull",),
    ]
    assert {r.user for r in asked} == {token_registry.username}


async def test_expired_tokens_are_fetched_again(
    token_registry: RegistryServer, tokens: TokenServer, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await push(token_registry.url, repo, "1", _image(), auth=token_registry.push_auth)
    # The token cache reads the client's clock: a stepped one makes the expiry independent of the
    # machine's speed.
    now = [1000.0]
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    tokens.expires_in = 60  # kept for 50 s: the lifetime minus the 10 s margin
    before = tokens.count()
    async with RegistryClient(credentials=_store(token_registry)) as client:
        await client.head_digest(token_registry.ref(repo, "1"))
        now[0] += 49.0
        await client.head_digest(token_registry.ref(repo, "1"))
        assert tokens.count() - before == 1
        now[0] += 1.0
        await client.head_digest(token_registry.ref(repo, "1"))
    assert tokens.count() - before == 2


async def test_anonymous_token_for_a_public_repository(
    token_registry: RegistryServer, tokens: TokenServer, repo: str
) -> None:
    public = f"public/{repo}"
    image = _image()
    await push(token_registry.url, public, "1", image, auth=token_registry.push_auth)
    async with RegistryClient() as client:
        assert await client.head_digest(token_registry.ref(public, "1")) == image.digest
    assert tokens.requests[-1].user is None


async def test_private_repository_without_credentials(token_registry: RegistryServer, repo: str) -> None:
    await push(token_registry.url, repo, "1", _image(), auth=token_registry.push_auth)
    async with RegistryClient() as client:
        with pytest.raises(AuthenticationError, match=r"unauthorized|refused"):
            await client.head_digest(token_registry.ref(repo, "1"))


async def test_token_server_refuses_a_wrong_password(
    token_registry: RegistryServer, tokens: TokenServer, repo: str
) -> None:
    async with RegistryClient(credentials=_store(token_registry, "wrong")) as client:
        with pytest.raises(AuthenticationError, match=r"token server refused .* as 'tester'"):
            await client.head_digest(token_registry.ref(repo, "1"))
    assert tokens.requests[-1].status == 401


async def test_identity_token_uses_the_oauth2_refresh_grant(
    token_registry: RegistryServer, tokens: TokenServer, repo: str
) -> None:
    image = _image()
    await push(token_registry.url, repo, "1", image, auth=token_registry.push_auth)
    tokens.refresh_tokens["refresh-me"] = "tester"
    store = CredentialStore({token_registry.address: Credentials(identity_token="refresh-me")})
    async with RegistryClient(credentials=store) as client:
        assert await client.head_digest(token_registry.ref(repo, "1")) == image.digest
    assert tokens.requests[-1].method == "POST"


# ---------------------------------------------------------------------- credential sources


def _docker_config(server: RegistryServer) -> bytes:
    auth = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    return json.dumps({"auths": {f"http://{server.address}/v2/": {"auth": auth}}}).encode()


async def test_credentials_from_a_config_json_file(
    basic_registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = _image()
    await push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth)
    path = tmp_path / "config.json"
    path.write_bytes(_docker_config(basic_registry))
    async with RegistryClient(credentials=CredentialStore.from_docker_config(path)) as client:
        assert await client.head_digest(basic_registry.ref(repo, "1")) == image.digest


async def test_credentials_from_a_pull_secret(token_registry: RegistryServer, repo: str) -> None:
    image = _image()
    await push(token_registry.url, repo, "1", image, auth=token_registry.push_auth)
    secret_data = {".dockerconfigjson": base64.b64encode(_docker_config(token_registry)).decode()}
    store = CredentialStore.from_kubernetes_secret("kubernetes.io/dockerconfigjson", secret_data)
    async with RegistryClient(credentials=store) as client:
        source = RegistrySource(client, token_registry.ref(repo, "1"))
        assert (await source.resolve(Platform())).manifest_digest == image.digest


async def test_many_concurrent_lookups_share_one_token(
    token_registry: RegistryServer, tokens: TokenServer, repo: str
) -> None:
    await push(token_registry.url, repo, "1", _image(), auth=token_registry.push_auth)
    before = tokens.count()
    async with RegistryClient(RegistrySettings(concurrency=4), _store(token_registry)) as client:
        await asyncio.gather(*(client.head_digest(token_registry.ref(repo, "1")) for _ in range(12)))
    assert tokens.count() - before == 1


async def test_plain_http_token_realm_elsewhere_is_refused(
    registry: RegistryServer, repo: str, make_proxy: Callable[..., Awaitable[CountingProxy]]
) -> None:
    async def challenge(request: web.Request) -> web.StreamResponse | None:
        realm = 'Bearer realm="http://auth.example.invalid/token",service="s"'
        return web.Response(status=401, headers={"WWW-Authenticate": realm})

    proxy = await make_proxy(registry.url, hooks=[challenge])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    store = CredentialStore({proxy.address: Credentials("u", "p")})
    async with RegistryClient(credentials=store) as client:
        # Refused before any connection: the credentials would cross the network in clear.
        with pytest.raises(InsecureRegistryError, match=r"token realm refused: plain HTTP"):
            await client.head_digest(ref)


async def test_forbidden_is_an_authentication_error(
    registry: RegistryServer, repo: str, make_proxy: Callable[..., Awaitable[CountingProxy]]
) -> None:
    async def forbid(request: web.Request) -> web.StreamResponse | None:
        error = {"code": "DENIED", "message": "requested access to the resource is denied"}
        body = json.dumps({"errors": [error]})
        return web.Response(status=403, text=body, content_type="application/json")

    proxy = await make_proxy(registry.url, hooks=[forbid])
    ref = registry.ref(repo, "1").model_copy(update={"registry": proxy.address})
    async with RegistryClient() as client:
        with pytest.raises(AuthenticationError, match=r"access denied \(DENIED\)"):
            await client.get_manifest(ref, "1")
