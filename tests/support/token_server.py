"""A token server for distribution's `auth.token` mode: checks credentials, grants scopes, signs
JWTs.

The registry trusts the certificate this module generates (its `rootcertbundle`); tokens carry that
certificate in their `x5c` header and are signed with ES256. Every token request is recorded so
tests can count them (token caching) and see who asked for what.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from support import certs
from support.threaded import ThreadedApp

ISSUER = "distroguard-test-issuer"
SERVICE = "distroguard-test-registry"
#: Repositories under this prefix may be pulled anonymously.
PUBLIC_PREFIX = "public/"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 key and a self-signed certificate for it (the registry's trust root)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, common_name: str = "distroguard test token signer") -> SigningKey:
        """A fresh self-signed key pair; the certificate is a CA so the registry can trust it as root."""
        signer = certs.new_ca(common_name)
        return cls(signer.key, signer.cert)

    def write_cert(self, path: Path) -> Path:
        """The certificate as PEM, for the registry's `auth.token.rootcertbundle`."""
        return certs.write_cert(path, self.cert)

    def sign_jwt(self, claims: dict[str, object]) -> str:
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass(frozen=True)
class TokenRequest:
    method: str
    user: str | None
    scopes: tuple[str, ...]
    status: int


@dataclass
class TokenServer:
    """Users (name → password) and OAuth2 refresh tokens (token → user) it accepts."""

    signer: SigningKey
    users: dict[str, str]
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    expires_in: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    """Every token handed out, for tests that look for them where they must not be (logs, errors)."""
    delay: float = 0.0
    """Seconds each answer is held back (a slow token endpoint); set and reset by the test."""
    down: int | None = None
    """A status (503...) answered to every request instead of a token (a failing endpoint)."""
    arrived: int = 0
    """Requests received so far, counted as they arrive (`requests` records them once answered)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _app: ThreadedApp | None = None

    @property
    def realm(self) -> str:
        assert self._app is not None
        return f"{self._app.url}/token"

    def start(self) -> TokenServer:
        app = web.Application()
        app.router.add_get("/token", self._handle)
        app.router.add_post("/token", self._handle)
        self._app = ThreadedApp(app, "token-server").start()
        return self

    def stop(self) -> None:
        if self._app is not None:
            self._app.stop()
            self._app = None

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _user(self, request: web.Request, form: dict[str, str]) -> tuple[str | None, bool]:
        """(user, credentials were offered and are good); (None, True) when anonymous."""
        if form.get("grant_type") == "refresh_token":
            user = self.refresh_tokens.get(form.get("refresh_token", ""))
            return user, user is not None
        if form.get("grant_type") == "password":
            name = form.get("username", "")
            return name, self.users.get(name) == form.get("password")
        header = request.headers.get("Authorization", "")
        if not header:
            return None, True
        if not header.startswith("Basic "):
            return None, False
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, False
        return name, self.users.get(name) == password

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.arrived += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down is not None:
            self._record(TokenRequest(request.method, None, (), self.down))
            return web.json_response({"errors": [{"code": "UNAVAILABLE"}]}, status=self.down)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if request.method == "POST":
            scopes = tuple(form.get("scope", "").split())
            service = form.get("service", "")
        else:
            scopes = tuple(request.query.getall("scope", []))
            service = request.query.get("service", "")
        user, ok = self._user(request, form)
        if not ok or service != SERVICE:
            self._record(TokenRequest(request.method, user, scopes, 401))
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if user is None:
                granted = ["pull"] if name.startswith(PUBLIC_PREFIX) and "pull" in wanted else []
            else:
                granted = wanted
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        token = self.signer.sign_jwt(claims)
        self._record(TokenRequest(request.method, user, scopes, 200))
        with self._lock:
            self.issued.append(token)
        body = {"token": token, "access_token": token, "expires_in": self.expires_in}
        return web.json_response(body)
