"""Registry credentials from Docker's `config.json` and from Kubernetes image pull secrets.

Secrets never appear in a repr, a message or a log line: errors name the file and the registry key
only. Credential helpers (`credsStore`, `credHelpers`) are not run: an admission controller executes
nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distroguard.errors import InvalidCredentials
from distroguard.registry.hosts import canonical_registry

#: Largest credentials file or secret payload read (real ones are a few KB).
MAX_CONFIG_BYTES = 1024 * 1024

SECRET_TYPE_DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
SECRET_TYPE_DOCKERCFG = "kubernetes.io/dockercfg"
_SECRET_KEYS = {
    SECRET_TYPE_DOCKERCONFIGJSON: ".dockerconfigjson",
    SECRET_TYPE_DOCKERCFG: ".dockercfg",
}


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What to authenticate with at one registry.

    `password` goes with `username` (HTTP basic, or to obtain a bearer token); `identity_token` is
    an OAuth2 refresh token (`identitytoken` in config.json); `registry_token` is a bearer token
    used as is.
    """

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def has_basic(self) -> bool:
        return bool(self.username and self.password)

    def basic_header(self) -> str | None:
        """`Authorization` value for HTTP basic, or None without a username and password."""
        if not self.has_basic:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        kinds = [
            name
            for name, value in (
                ("password", self.password),
                ("identity_token", self.identity_token),
                ("registry_token", self.registry_token),
            )
            if value
        ]
        secrets = "".join(f", {kind}=***" for kind in kinds)
        return f"Credentials(username={self.username!r}{secrets})"

    __str__ = __repr__


class CredentialStore:
    """Credentials by registry; keys are normalised (`https://index.docker.io/v1/` is
    `docker.io`).
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Credentials] | None = None) -> None:
        self._entries: dict[str, Credentials] = {}
        for key, credentials in (entries or {}).items():
            self._entries[canonical_registry(key)] = credentials

    def get(self, registry: str) -> Credentials | None:
        return self._entries.get(canonical_registry(registry))

    @property
    def registries(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, registry: object) -> bool:
        return isinstance(registry, str) and canonical_registry(registry) in self._entries

    def __repr__(self) -> str:
        return f"CredentialStore(registries={list(self.registries)!r})"

    def merged(self, *others: CredentialStore) -> CredentialStore:
        """A store with these entries, then each of `others`' (a later store wins for the same
        registry).
        """
        combined = CredentialStore()
        for store in (self, *others):
            combined._entries.update(store._entries)
        return combined

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_docker_config(cls, path: Path | str) -> CredentialStore:
        """Read a Docker `config.json` (the file `docker login` writes)."""
        path = Path(path)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise InvalidCredentials(f"{path}: cannot read ({exc.strerror or exc})") from None
        return cls.from_docker_config_json(data, source=str(path))

    @classmethod
    def from_docker_config_json(cls, data: bytes | str, *, source: str = "config.json") -> CredentialStore:
        """Parse the text of a Docker `config.json` (`{"auths": {registry: {...}}}`)."""
        document = _load(data, source)
        auths = document.get("auths", {})
        if not isinstance(auths, dict):
            raise InvalidCredentials(f"{source}: 'auths' must be an object")
        return cls(dict(_entries(auths.items(), source)))

    @classmethod
    def from_kubernetes_secret(
        cls, secret_type: str, data: Mapping[str, str | bytes], *, source: str = "pull secret"
    ) -> CredentialStore:
        """Parse an image pull secret's `data` (values base64-encoded, as the API returns them).

        `kubernetes.io/dockerconfigjson` holds a config.json under `.dockerconfigjson`;
        the legacy `kubernetes.io/dockercfg` holds the bare `auths` map under `.dockercfg`.
        """
        key = _SECRET_KEYS.get(secret_type)
        if key is None:
            raise InvalidCredentials(
                f"{source}: type {secret_type!r} is not an image pull secret "
                f"(expected {' or '.join(_SECRET_KEYS)})"
            )
        encoded = data.get(key)
        if encoded is None:
            raise InvalidCredentials(f"{source}: no {key!r} key in the secret data")
        payload = _b64decode(encoded, f"{source}: {key}")
        if secret_type == SECRET_TYPE_DOCKERCONFIGJSON:
            return cls.from_docker_config_json(payload, source=f"{source} {key}")
        auths = _load(payload, f"{source} {key}")
        return cls(dict(_entries(auths.items(), f"{source} {key}")))


PullSecret = tuple[str, str, Mapping[str, str | bytes]]
"""An image pull secret as read: (name, type, data with base64 values)."""


def from_pull_secrets(
    secrets: Iterable[PullSecret], namespace: str, problems: list[str]
) -> tuple[CredentialStore | None, str]:
    """The credentials of a pod's image pull secrets, given in the order the pod names them.

    Returns the merged store (None when no secret was usable), where the first secret listed wins for a
    registry, as with the kubelet's first successful pull; and the sha256 fingerprint of the secrets used
    (names, types, data), so that credentials that change are told apart. Why a secret was left out goes
    to `problems` (naming the secret and key, never its data).
    """
    stores: list[CredentialStore] = []
    digest = hashlib.sha256()
    for name, kind, data in secrets:
        try:
            store = CredentialStore.from_kubernetes_secret(kind, data, source=f"secret {namespace}/{name}")
        except InvalidCredentials as exc:
            problems.append(str(exc))
            continue
        digest.update(json.dumps([name, kind, data], sort_keys=True).encode())
        stores.append(store)
    if not stores:
        return None, ""
    return stores[-1].merged(*reversed(stores[:-1])), digest.hexdigest()


def _load(data: bytes | str, source: str) -> dict[str, Any]:
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidCredentials(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = json.loads(data)
    except ValueError:
        # The exception text could quote the file, secrets included: name the place only.
        raise InvalidCredentials(f"{source}: not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidCredentials(f"{source}: expected a JSON object")
    return document


def _b64decode(value: str | bytes, where: str) -> bytes:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    raw = raw.strip()
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCredentials(f"{where}: not valid base64") from None


def _entries(items: Iterable[tuple[str, Any]], source: str) -> Iterable[tuple[str, Credentials]]:
    for registry, entry in items:
        where = f"{source}: auths[{registry!r}]"
        if not isinstance(entry, dict):
            raise InvalidCredentials(f"{where}: expected an object")
        fields = {}
        for name in ("auth", "username", "password", "identitytoken", "registrytoken"):
            value = entry.get(name, "")
            if not isinstance(value, str):
                raise InvalidCredentials(f"{where}.{name}: expected a string")
            fields[name] = value
        username, password = fields["username"], fields["password"]
        if fields["auth"]:
            # Docker lets `auth` win over separate username/password fields.
            user, sep, secret = (
                _b64decode(fields["auth"], f"{where}.auth").decode("utf-8", "replace").partition(":")
            )
            if not sep:
                raise InvalidCredentials(f"{where}.auth: expected base64 of 'username:password'")
            username, password = user, secret
        credentials = Credentials(
            username=username,
            password=password,
            identity_token=fields["identitytoken"],
            registry_token=fields["registrytoken"],
        )
        if username or password or credentials.identity_token or credentials.registry_token:
            yield registry, credentials
