"""Debian's real `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, as pytest fixtures.

    registry          anonymous, session-scoped
    tls_registry      anonymous over HTTPS with a test CA (`.tls.client_context()` trusts it)
    basic_registry    htpasswd (bcrypt) basic auth; `.username` / `.password`
    token_registry    `auth.token` with the test token server (`.token_server`) as realm
    repo              a fresh repository name for the test (registries are shared by the session)

Each registry gets a free port, a temporary storage directory (filesystem driver, deletes enabled)
and a log file; it is stopped (terminate, then kill after a grace period) and its files removed at
the end of the session, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from distroguard.model import ImageRef
from distroguard.registry.credentials import Credentials, CredentialStore
from support.distros import Files
from support.images import ImageBuilder, push
from support.tls import TestPKI, make_pki
from support.token_server import ISSUER, SERVICE, SigningKey, TokenServer

#: Debian's package `docker-registry` puts the binary on PATH under this name.
REGISTRY_COMMAND = "docker-registry"
START_TIMEOUT = 20.0
STOP_GRACE = 5.0
TEST_USER = "tester"
TEST_PASSWORD = "s3cret-test-password"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(binary: str, config: Path) -> list[str]:
    command = [binary, "serve", str(config)]
    # If the test run is killed outright, the registry goes with it (Linux parent-death signal).
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


@dataclass
class RegistryServer:
    """A running registry: `address` (`127.0.0.1:PORT`) is what image references name."""

    root: Path
    port: int = 0
    kind: str = "anonymous"
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    tls: TestPKI | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def ref(self, repository: str, tag: str | None = "latest", digest: str | None = None) -> ImageRef:
        return ImageRef(registry=self.address, repository=repository, tag=tag, digest=digest)

    def credentials(self) -> CredentialStore:
        """A store with the right username and password for this registry (empty when anonymous)."""
        if self.username is None or self.password is None:
            return CredentialStore()
        return CredentialStore({self.address: Credentials(self.username, self.password)})

    @property
    def push_auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    # ------------------------------------------------------------------ lifecycle

    def _config(self, auth: dict[str, Any] | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": uuid.uuid4().hex},
        }
        if auth:
            config["auth"] = auth
        if self.tls is not None:
            config["http"]["tls"] = {
                "certificate": str(self.tls.cert_pem),
                "key": str(self.tls.key_pem),
            }
        return config

    def start(self, binary: str, auth: dict[str, Any] | None = None) -> RegistryServer:
        last_error = ""
        for _ in range(3):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            config_path = self.root / "config.yml"
            # JSON is YAML: no YAML writer needed.
            config_path.write_text(json.dumps(self._config(auth), indent=2))
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    _command(binary, config_path),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                return self
            last_error = self._tail_log()
            self.stop()
        raise RuntimeError(f"docker-registry did not start: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            context = ssl.create_default_context(cafile=str(self.tls.ca_pem)) if self.tls else None
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=context) as answer:
                    answer.read()
                    return True
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == 401:  # auth-enabled registries answer 401: they are up
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _tail_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_GRACE)

    def blob_paths(self) -> list[Path]:
        """The stored blob files (`.../blobs/sha256/xx/<hex>/data`), for corrupting one on
        purpose.
        """
        return sorted((self.root / "data").glob("docker/registry/v2/blobs/*/*/*/data"))


@contextlib.contextmanager
def running_registry(
    auth: dict[str, Any] | None = None,
    *,
    prepare: Any = None,
    **fields: Any,
) -> Iterator[RegistryServer]:
    """A registry for the duration of the block; its directory is removed afterwards."""
    binary = shutil.which(REGISTRY_COMMAND)
    if binary is None:
        pytest.fail(f"{REGISTRY_COMMAND} is not installed (apt-get install docker-registry)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="distroguard-registry-"))
    server = RegistryServer(root=root, **fields)
    try:
        if prepare is not None:
            auth = prepare(server)
        yield server.start(binary, auth)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def htpasswd_line(username: str, password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}\n"


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """An anonymous registry (push and pull without credentials)."""
    with running_registry() as server:
        yield server


@pytest.fixture(scope="session")
def basic_registry() -> Iterator[RegistryServer]:
    """A registry with htpasswd basic auth; `.username` and `.password` are accepted."""

    def prepare(server: RegistryServer) -> dict[str, Any]:
        path = server.root / "htpasswd"
        path.write_text(htpasswd_line(TEST_USER, TEST_PASSWORD))
        return {"htpasswd": {"realm": "distroguard-test", "path": str(path)}}

    with running_registry(
        prepare=prepare, kind="basic", username=TEST_USER, password=TEST_PASSWORD
    ) as server:
        yield server


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(SigningKey.generate(), users={TEST_USER: TEST_PASSWORD}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def token_registry(token_server: TokenServer) -> Iterator[RegistryServer]:
    """A registry with `auth.token`: bearer tokens from `.token_server`, which knows `.username`."""

    def prepare(server: RegistryServer) -> dict[str, Any]:
        bundle = token_server.signer.write_cert(server.root / "token-signer.pem")
        return {
            "token": {
                "realm": token_server.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        }

    with running_registry(
        prepare=prepare,
        kind="token",
        username=TEST_USER,
        password=TEST_PASSWORD,
        token_server=token_server,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[RegistryServer]:
    """An anonymous registry serving HTTPS with a certificate from a test CA (`.tls.ca_pem`)."""

    def prepare(server: RegistryServer) -> None:
        server.tls = make_pki(server.root)

    with running_registry(prepare=prepare, kind="tls") as server:
        yield server


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own, so tests sharing a registry never see each other."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "test"
    return f"t/{base}-{uuid.uuid4().hex[:8]}"


def push_root(registry: RegistryServer, repo: str, root: Files, tag: str = "1") -> str:
    """`root` as a one-layer image pushed to `registry` as `repo:tag`; the reference a pod names it by."""
    asyncio.run(push(registry.url, repo, tag, ImageBuilder().layer(root).build()))
    return f"{registry.address}/{repo}:{tag}"
