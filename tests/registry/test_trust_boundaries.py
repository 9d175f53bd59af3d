"""Trust boundaries of the registry client: where credentials may go, and where secrets must never show.

- A registry's bearer challenge names the URL our credentials are sent to: a realm on the metadata
  service, a link-local, private or cluster-internal host is refused before any connection (a guard
  here fails the test if anything but loopback is even looked up).
- Credentials never follow a redirect to another host: test_transport.py's
  `test_authorization_is_not_forwarded_to_another_host` covers it (and plain-HTTP redirects).
- Passwords and tokens never appear in log records, error messages, tracebacks or reprs.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from distroguard.admission import admit
from distroguard.admission.review import decode_document
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import AuthenticationError, InsecureRegistryError, SourceError, reason_of
from distroguard.model import ImageRef
from distroguard.registry.authflow import realm_refusal
from distroguard.registry.client import RegistryClient
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver import Resolver
from support.admission import StaticCluster
from support.distros import DEBIAN_12_ROOT
from support.images import ImageBuilder, push
from support.policies import policy
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer
from support.reviews import container, pod_spec, review, workload
from support.token_server import TokenServer

pytestmark = pytest.mark.registry
CATALOG = EolCatalog(bundled_snapshot())
NOW = datetime(2026, 6, 1, tzinfo=UTC)

BAD_REALMS = {
    "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "metadata-https": "https://169.254.169.254/token",
    "metadata-decimal": "https://2852039166/token",
    "metadata-short-form": "https://169.254.43518/token",
    "metadata-hex": "https://0xa9.0xfe.0xa9.0xfe/token",
    "metadata-v4-mapped": "https://[::ffff:169.254.169.254]/token",
    "metadata-aws-v6": "https://[fd00:ec2::254]/token",
    "metadata-gcp": "https://metadata.google.internal/computeMetadata/v1/token",
    "metadata-gcp-dot": "https://metadata.google.internal./computeMetadata/v1/token",
    "link-local": "https://169.254.1.1/token",
    "link-local-v6": "https://[fe80::1]/token",
    "private-10": "https://10.0.0.1/token",
    "private-172": "https://172.16.5.4:8443/token",
    "private-192": "https://192.168.1.1/token",
    "private-v6": "https://[fd12:3456::1]/token",
    "cgnat": "https://100.64.0.10/token",
    "unspecified": "https://0.0.0.0/token",
    "service": "https://kubernetes.default.svc/api/v1/secrets",
    "cluster-local": "https://vault.vault.svc.cluster.local:8200/v1/auth/token",
    "single-label": "https://kubernetes/api",
    "plain-http-public": "http://auth.example.com/token",
}


# ---------------------------------------------------------------------- a loopback-only guard

_guards: list[list[str]] = []
_installed = False


def _loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): a wildcard bind, not a lookup
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _guards:
        return
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None
    else:
        return
    if not _loopback(host):
        _guards[-1].append(f"{event} {host}")
        raise ConnectionRefusedError(f"test guard: no traffic to {host}")


@pytest.fixture
def outbound() -> Iterator[list[str]]:
    """Attempts to look up or reach anything but loopback during the test: refused, and listed."""
    global _installed
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
    attempts: list[str] = []
    _guards.append(attempts)
    try:
        yield attempts
    finally:
        _guards.remove(attempts)


# ---------------------------------------------------------------------- a hostile registry


class ChallengingRegistry:
    """A fake registry on 127.0.0.1 that answers every request with a bearer challenge naming `realm`."""

    def __init__(self) -> None:
        self.realm = ""
        self.requests = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        challenge = f'Bearer realm="{self.realm}",service="evil",scope="repository:app:pull"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})


@pytest.fixture
async def hostile() -> AsyncIterator[ChallengingRegistry]:
    server = ChallengingRegistry()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("realm", list(BAD_REALMS.values()), ids=list(BAD_REALMS))
async def test_a_hostile_realm_is_refused_before_connecting(
    hostile: ChallengingRegistry, outbound: list[str], realm: str
) -> None:
    hostile.realm = realm
    store = CredentialStore({hostile.address: Credentials(TEST_USER, TEST_PASSWORD)})
    async with RegistryClient(credentials=store) as client:
        with pytest.raises(InsecureRegistryError) as caught:
            await client.head_digest(ImageRef.parse(f"{hostile.address}/app:1"))
    message = str(caught.value)
    assert message.startswith(f"registry {hostile.address}: token realm ")
    assert "refused" in message or "plain HTTP" in message
    assert TEST_PASSWORD not in message
    assert hostile.requests == 1  # the anonymous try; nothing more
    assert outbound == []  # refused from the URL's text: not even a lookup


@pytest.mark.parametrize(
    ("realm", "registry", "allowed", "refused"),
    [
        ("https://10.0.0.1/token", "127.0.0.1:5000", frozenset(), "internal host"),
        ("https://10.0.0.1/token", "127.0.0.1:5000", frozenset({"10.0.0.1"}), None),
        ("https://10.0.0.1:8443/token", "127.0.0.1:5000", frozenset({"10.0.0.1:8443"}), None),
        ("https://10.0.0.1/token", "10.0.0.2:5000", frozenset(), None),  # the registry is there too
        ("https://auth.harbor.svc/t", "harbor.harbor.svc", frozenset(), None),
        ("https://auth.harbor.svc/t", "registry.example.com", frozenset(), "internal host"),
        ("https://127.0.0.1:9/t", "registry.example.com", frozenset(), "loopback host"),
        ("https://[fe80::1]/t", "registry.example.com", frozenset(), "link-local host"),
        ("https://169.254.169.254/t", "169.254.10.10:5000", frozenset(), "metadata"),
        ("https://169.254.169.254/t", "10.0.0.2", frozenset(), "metadata"),
        ("https://169.254.169.254/t", "10.0.0.2", frozenset({"169.254.169.254"}), None),
        ("https://auth.docker.io/token", "docker.io", frozenset(), None),
        ("https://auth.example.com/token", "127.0.0.1:5000", frozenset(), None),
    ],
)
def test_realm_rules(realm: str, registry: str, allowed: frozenset[str], refused: str | None) -> None:
    refusal = realm_refusal(URL(realm), registry, allowed)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refused in refusal


def test_allowed_realm_hosts_are_a_setting() -> None:
    settings = RegistrySettings(token_realm_hosts=frozenset({"Vault.Internal:8200"}))
    assert settings.token_realm_hosts == frozenset({"vault.internal:8200"})
    assert RegistrySettings().token_realm_hosts == frozenset()


async def test_a_loopback_realm_for_a_loopback_registry_still_works(
    token_registry: RegistryServer, repo: str, outbound: list[str]
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    await push(token_registry.url, repo, "1", image, auth=token_registry.push_auth)
    async with RegistryClient(credentials=token_registry.credentials()) as client:
        assert await client.head_digest(token_registry.ref(repo, "1")) == image.digest
    assert outbound == []


# ---------------------------------------------------------------------- secrets stay secret


def _leaks(secrets: list[str], texts: list[str]) -> list[str]:
    return [f"{secret[:6]}... in {text[:200]!r}" for text in texts for secret in secrets if secret in text]


def _texts_of(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


async def test_secrets_never_reach_logs_errors_or_reprs(
    token_registry: RegistryServer,
    basic_registry: RegistryServer,
    token_server: TokenServer,
    repo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    await push(token_registry.url, repo, "1", image, auth=token_registry.push_auth)
    await push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth)
    token_server.refresh_tokens["refresh-token-secret-value"] = TEST_USER
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    issued_before = len(token_server.issued)
    good = CredentialStore(
        {
            token_registry.address: Credentials(TEST_USER, TEST_PASSWORD),
            basic_registry.address: Credentials(TEST_USER, TEST_PASSWORD),
        }
    )
    async with RegistryClient(credentials=good) as client:
        resolver = Resolver(client)
        for server in (token_registry, basic_registry):
            facts = await resolver.resolve(f"{server.address}/{repo}:1")
            assert facts.os is not None
            texts += [facts.model_dump_json(), repr(facts)]
        texts += [repr(client), repr(client.credentials), repr(good.get(token_registry.address))]
        texts += [repr(resolver.cache.failures), repr(client.stats)]
    # Refresh-token grant, and refused credentials of each kind: the errors name the user, not the secret.
    identity = CredentialStore(
        {token_registry.address: Credentials(identity_token="refresh-token-secret-value")}
    )
    async with RegistryClient(credentials=identity) as client:
        await Resolver(client).resolve(f"{token_registry.address}/{repo}:1")
        texts.append(repr(client.credentials))
    for server in (token_registry, basic_registry):
        wrong = CredentialStore({server.address: Credentials(TEST_USER, "wrong-password-secret")})
        async with RegistryClient(credentials=wrong) as client:
            with pytest.raises(AuthenticationError) as caught:
                await Resolver(client).resolve(f"{server.address}/{repo}:1")
            assert TEST_USER in str(caught.value)
            texts += _texts_of(caught.value)
    # A hostile realm refused with credentials configured: the refusal does not echo them either.
    tokens = token_server.issued[issued_before:]
    assert len(tokens) >= 2
    secrets = [TEST_PASSWORD, "wrong-password-secret", "refresh-token-secret-value", *tokens]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            texts += _texts_of(record.exc_info[1])
    texts.append(caplog.text)
    assert not _leaks(secrets, texts)
    assert any(TEST_USER in text for text in texts)  # the search does look where names appear


async def test_a_failed_lookup_keeps_no_secret_in_the_failure_cache(
    basic_registry: RegistryServer, repo: str
) -> None:
    wrong = CredentialStore({basic_registry.address: Credentials(TEST_USER, "another-wrong-secret")})
    async with RegistryClient(credentials=wrong) as client:
        resolver = Resolver(client)
        with pytest.raises(SourceError):
            await resolver.resolve(f"{basic_registry.address}/{repo}:missing")
        cached = resolver.cache.failures.peek(
            (f"{basic_registry.address}/{repo}:missing", "linux/amd64", "fast")
        )
    assert cached is not None
    assert not _leaks(["another-wrong-secret"], _texts_of(cached))


# ---------------------------------------------------------------------- registries refused in the cluster


@pytest.mark.parametrize(("on_unresolved", "allowed"), [("deny", False), ("warn", True), ("allow", True)])
async def test_a_refused_registry_is_an_unresolved_image_and_on_unresolved_decides(
    registry: RegistryServer, repo: str, on_unresolved: str, allowed: bool
) -> None:
    """As `distroguard run` builds its clients (the guard on, nothing allowed): a registry on loopback is
    refused without a request, and the policies' onUnresolved answers, saying how to allow it."""
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    await push(registry.url, repo, "1", image)
    ref = f"{registry.address}/{repo}:1"
    chosen = [
        policy(
            "no-musl", {"name": "no-musl", "denyLibc": ["musl"]}, action="deny", onUnresolved=on_unresolved
        )
    ]
    request = decode_document(review(workload("Pod", pod_spec(container("app", ref)))))
    async with RegistryClient(RegistrySettings(registry_guard=True)) as client:
        resolver = Resolver(client)
        answer = await admit(request, StaticCluster(resolver), chosen, CATALOG, budget=5, now=NOW)
        assert client.stats.requests == {}  # refused before any connection
    assert answer.allowed is allowed
    assert [reason_of(e) for e in answer.unresolved] == ["registry-address-not-allowed"]
    reason = str(answer.unresolved[0])
    assert "registry address not allowed" in reason
    assert "--registry-allow 127.0.0.1" in reason
    if on_unresolved == "deny":
        assert reason in answer.message
    else:
        assert answer.warnings  # admitted without facts: said so
    # Allowed, the same image resolves.
    async with RegistryClient(
        RegistrySettings(registry_guard=True, registry_allow=("127.0.0.0/8",))
    ) as client:
        facts = await Resolver(client).resolve(ref)
    assert facts.os is not None
