"""The retry policy and settings, without a network: Retry-After parsing, backoff bounds,
validation."""

from __future__ import annotations

import email.utils

import pytest

from distroguard.registry.retry import RETRY_STATUSES, backoff_delay, parse_retry_after
from distroguard.registry.settings import RegistrySettings
from distroguard.registry.transport import Transport

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # in the past: go now
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    assert [backoff_delay(n, 0.5, 3.0, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [
        0.25,
        0.5,
        1.0,
        1.5,
        1.5,
    ]
    assert [backoff_delay(n, 0.5, 3.0, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
    ]


def test_retry_after_is_capped() -> None:
    transport = Transport(RegistrySettings(max_retry_after=10))
    assert transport.retry_delay(1, 3600) == 10
    assert transport.retry_delay(1, 2) == 2


def test_what_is_retried() -> None:
    assert {429, 500, 502, 503, 504} <= RETRY_STATUSES
    assert not {400, 401, 403, 404, 501} & RETRY_STATUSES


def test_settings_validation_and_defaults() -> None:
    settings = RegistrySettings(insecure_registries=frozenset({"Registry.Local:5000"}))
    assert settings.insecure_registries == frozenset({"registry.local:5000"})
    assert settings.user_agent.startswith("distroguard/")
    assert settings.concurrency == 8
    assert settings.max_manifest_bytes == 4 * 1024 * 1024
    with pytest.raises(ValueError, match="connect_timeout must be positive"):
        RegistrySettings(connect_timeout=0)
    with pytest.raises(ValueError, match="max_retries must not be negative"):
        RegistrySettings(max_retries=-1)
    with pytest.raises(ValueError, match="concurrency"):
        RegistrySettings(concurrency=0)
