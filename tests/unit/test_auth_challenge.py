"""`WWW-Authenticate` parsing, token responses and the token cache (pure parts of registry auth)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distroguard.errors import SourceError
from distroguard.registry.auth import (
    Challenge,
    TokenCache,
    parse_token_response,
    parse_www_authenticate,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/python:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/python:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        # Unquoted values (URLs included), odd spacing, mixed case.
        (
            "BEARER Realm = https://h:5001/token?x=1 ,  Service=svc",
            [Challenge("bearer", {"realm": "https://h:5001/token?x=1", "service": "svc"})],
        ),
        # Several challenges in one header, and escapes in quoted strings.
        (
            'Bearer realm="r", scope="a b", Basic realm="say \\"hi\\""',
            [
                Challenge("bearer", {"realm": "r", "scope": "a b"}),
                Challenge("basic", {"realm": 'say "hi"'}),
            ],
        ),
        ("Negotiate YWJj==, Basic", [Challenge("negotiate", {}, "YWJj=="), Challenge("basic")]),
        (
            'Bearer realm="",error="invalid_token"',
            [Challenge("bearer", {"realm": "", "error": "invalid_token"})],
        ),
        ("", []),
        (" , ,", []),
        ('="x", realm=y', []),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_several_header_lines() -> None:
    challenges = parse_www_authenticate(['Basic realm="a"', 'Bearer realm="b",service="s"'])
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[1].realm == "b"
    assert challenges[1].service == "s"


def test_scopes_split_on_spaces() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="r",scope="repository:a:pull  repository:b:pull"')
    assert challenge.scopes == ("repository:a:pull", "repository:b:pull")
    assert Challenge("bearer").scopes == ()


@given(st.text(max_size=200))
def test_never_raises(header: str) -> None:
    for challenge in parse_www_authenticate(header):
        assert challenge.scheme == challenge.scheme.lower()


# ---------------------------------------------------------------------- token responses


def test_token_response() -> None:
    assert parse_token_response(b'{"token": "t", "expires_in": 300}', "x") == ("t", 300.0)
    assert parse_token_response(b'{"access_token": "a"}', "x") == ("a", 60.0)
    assert parse_token_response(b'{"token": "t", "expires_in": -5}', "x") == ("t", 60.0)
    assert parse_token_response(b'{"token": "t", "expires_in": true}', "x") == ("t", 60.0)


@pytest.mark.parametrize("body", [b"", b"[]", b'{"token": ""}', b'{"token": 5}', b"<html>"])
def test_bad_token_responses(body: bytes) -> None:
    with pytest.raises(SourceError, match="token"):
        parse_token_response(body, "token from h")


# ---------------------------------------------------------------------- token cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_live_until_their_lifetime_minus_the_margin() -> None:
    clock = Clock()
    cache = TokenCache(clock, margin=10)
    cache.put("r", "repository:a:pull", "token-a", 60)
    assert cache.get("r", "repository:a:pull") == "token-a"
    assert cache.get("r", "repository:b:pull") is None
    assert cache.get("other", "repository:a:pull") is None
    clock.now += 49
    assert cache.get("r", "repository:a:pull") == "token-a"
    clock.now += 1
    assert cache.get("r", "repository:a:pull") is None


def test_short_lived_tokens_are_still_reused() -> None:
    clock = Clock()
    cache = TokenCache(clock, margin=10)
    cache.put("r", "s", "t", 4)  # margin capped at half the lifetime
    clock.now += 1.9
    assert cache.get("r", "s") == "t"
    clock.now += 0.1
    assert cache.get("r", "s") is None


def test_cache_is_bounded_and_keeps_secrets_out_of_repr() -> None:
    clock = Clock()
    cache = TokenCache(clock, margin=0, max_entries=3)
    for i in range(5):
        cache.put("r", f"s{i}", f"secret-{i}", 60)
    assert len(cache) == 3
    assert cache.get("r", "s0") is None
    assert cache.get("r", "s4") == "secret-4"
    assert "secret" not in repr(cache)
    cache.drop("r", "s4")
    assert cache.get("r", "s4") is None
