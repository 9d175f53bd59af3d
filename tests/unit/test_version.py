"""Tolerant version numbers: what cycle matching and version bounds compare."""

from __future__ import annotations

import pytest

from distroguard.model.version import at_least, at_most, is_prerelease, same_release, version_parts


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("3.19.1", (3, 19, 1)),
        ("22.04", (22, 4)),
        ("2023", (2023,)),
        ("v25.06", (25, 6)),
        ("jdk-17.0.9+9", (17, 0, 9)),
        ("8u392-b08", (8,)),
        ("3.19_alpha20230901", (3, 19)),
        ("1.4-rolling-202307070317", (1, 4)),
        ("edge", ()),
        ("", ()),
    ],
)
def test_version_parts(text: str, parts: tuple[int, ...]) -> None:
    assert version_parts(text) == parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.22.0_alpha20250108", True),
        ("3.13.0rc1", True),
        ("edge", True),
        ("3.19.1", False),
        ("12", False),
        ("2023.12.20260817.0", False),
    ],
)
def test_prerelease(text: str, expected: bool) -> None:
    assert is_prerelease(text) is expected


@pytest.mark.parametrize(
    ("version", "bound", "least", "most"),
    [
        ("3.19.1", "3.19", True, True),
        ("3.18.9", "3.19", False, True),
        ("3.20.0", "3.19", True, False),
        ("12", "12.0", True, True),
        ("2.28", "2.28", True, True),
        ("2.17", "2.28", False, True),
        ("2.36", "2.28", True, False),
    ],
)
def test_bounds(version: str, bound: str, least: bool, most: bool) -> None:
    assert at_least(version, bound) is least
    assert at_most(version, bound) is most


@pytest.mark.parametrize(
    ("version", "release", "expected"),
    [
        ("22.04.3", "22.04", True),
        ("12.5", "12", True),
        ("3.12", "3.1", False),
        ("24.04", "22.04", False),
        ("12", "", False),
    ],
)
def test_same_release(version: str, release: str, expected: bool) -> None:
    assert same_release(version, release) is expected
