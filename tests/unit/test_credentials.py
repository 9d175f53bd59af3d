"""Credentials from Docker's config.json and Kubernetes pull secrets; secrets never shown."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from distroguard.errors import InvalidCredentials
from distroguard.registry.credentials import Credentials, CredentialStore, from_pull_secrets
from distroguard.registry.hosts import canonical_registry

SECRET = "hunter2-do-not-print"


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def _config(auths: dict[str, object]) -> bytes:
    return json.dumps({"auths": auths, "credsStore": "desktop"}).encode()


@pytest.mark.parametrize(
    ("key", "canonical"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("https://Registry.Example.com:5000/v2/", "registry.example.com:5000"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("ghcr.io", "ghcr.io"),
    ],
)
def test_registry_keys_are_normalised(key: str, canonical: str) -> None:
    assert canonical_registry(key) == canonical


def test_config_json_auth_forms() -> None:
    store = CredentialStore.from_docker_config_json(
        _config(
            {
                "https://index.docker.io/v1/": {"auth": _b64(f"hubuser:{SECRET}")},
                "ghcr.io": {"username": "octo", "password": SECRET},
                "quay.io": {"auth": _b64("x:y"), "username": "ignored", "password": "ignored"},
                "acr.example.com": {"identitytoken": SECRET},
                "tok.example.com": {"registrytoken": SECRET},
                "empty.example.com": {},
            }
        )
    )
    assert store.get("docker.io") == Credentials("hubuser", SECRET)
    assert store.get("index.docker.io") == store.get("docker.io")
    assert store.get("ghcr.io") == Credentials("octo", SECRET)
    assert store.get("quay.io") == Credentials("x", "y")  # `auth` wins, as in Docker
    assert store.get("acr.example.com") == Credentials(identity_token=SECRET)
    assert store.get("tok.example.com") == Credentials(registry_token=SECRET)
    assert store.get("empty.example.com") is None
    assert "empty.example.com" not in store
    assert "ghcr.io" in store
    assert store.registries == (
        "acr.example.com",
        "docker.io",
        "ghcr.io",
        "quay.io",
        "tok.example.com",
    )


def test_passwords_with_colons() -> None:
    store = CredentialStore.from_docker_config_json(_config({"r": {"auth": _b64("u:p:a:ss")}}))
    assert store.get("r") == Credentials("u", "p:a:ss")


def test_secrets_are_never_shown() -> None:
    creds = Credentials("bob", SECRET, identity_token=SECRET)
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert repr(creds) == "Credentials(username='bob', password=***, identity_token=***)"
    store = CredentialStore({"r": creds})
    assert SECRET not in repr(store)
    assert creds.basic_header() == "Basic " + _b64(f"bob:{SECRET}")
    assert Credentials(identity_token="x").basic_header() is None


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(_config({"127.0.0.1:5000": {"auth": _b64(f"u:{SECRET}")}}))
    assert CredentialStore.from_docker_config(path).get("127.0.0.1:5000") == Credentials("u", SECRET)
    with pytest.raises(InvalidCredentials, match="cannot read"):
        CredentialStore.from_docker_config(tmp_path / "missing.json")


def test_dockerconfigjson_secret() -> None:
    payload = _config({"ghcr.io": {"username": "octo", "password": SECRET}})
    store = CredentialStore.from_kubernetes_secret(
        "kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64(payload)}
    )
    assert store.get("ghcr.io") == Credentials("octo", SECRET)


def test_legacy_dockercfg_secret() -> None:
    payload = json.dumps({"https://index.docker.io/v1/": {"auth": _b64(f"u:{SECRET}"), "email": "e"}})
    store = CredentialStore.from_kubernetes_secret("kubernetes.io/dockercfg", {".dockercfg": _b64(payload)})
    assert store.get("docker.io") == Credentials("u", SECRET)


def test_merged_stores() -> None:
    a = CredentialStore({"r1": Credentials("a", "1"), "r2": Credentials("a", "2")})
    b = CredentialStore({"r2": Credentials("b", "2")})
    merged = a.merged(b)
    assert merged.get("r1") == Credentials("a", "1")
    assert merged.get("r2") == Credentials("b", "2")
    assert len(merged) == 2
    assert len(a) == 2


@pytest.mark.parametrize(
    ("secret_type", "data", "problem"),
    [
        ("Opaque", {}, "not an image pull secret"),
        ("kubernetes.io/dockerconfigjson", {}, "no '.dockerconfigjson' key"),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "%%%"}, "not valid base64"),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64(SECRET)}, "not valid JSON"),
        (
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": _b64('{"auths": []}')},
            "'auths' must be",
        ),
        (
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": _b64(_config({"r": {"auth": _b64(SECRET)}}))},
            r"auths\['r'\].auth: expected base64 of 'username:password'",
        ),
        (
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": _b64(_config({"r": {"password": 5}}))},
            r"auths\['r'\].password: expected a string",
        ),
    ],
)
def test_malformed_input_is_named_without_the_secret(
    secret_type: str, data: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidCredentials, match=problem) as caught:
        CredentialStore.from_kubernetes_secret(secret_type, data, source="secret ns/pull")
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_pull_secrets_merge_first_listed_first_and_say_which_were_left_out() -> None:
    def secret(registry: str, auth: str) -> dict[str, str]:
        config = json.dumps({"auths": {registry: {"auth": base64.b64encode(auth.encode()).decode()}}})
        return {".dockerconfigjson": base64.b64encode(config.encode()).decode()}

    first = ("first", "kubernetes.io/dockerconfigjson", secret("r.example.com", "a:1"))
    second = ("second", "kubernetes.io/dockerconfigjson", secret("r.example.com", "b:2"))
    opaque = ("opaque", "Opaque", {"x": "eA=="})
    problems: list[str] = []
    store, fingerprint = from_pull_secrets([first, opaque, second], "team", problems)
    assert store is not None
    assert store.get("r.example.com") == Credentials(username="a", password="1")  # the first listed wins
    assert problems == [
        "secret team/opaque: type 'Opaque' is not an image pull secret "
        "(expected kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg)"
    ]
    assert fingerprint != from_pull_secrets([second, first], "team", [])[1]
    assert from_pull_secrets([opaque], "team", []) == (None, "")
