"""Platforms as `os/arch[/variant]` and how index entries match a request."""

from __future__ import annotations

import pytest

from distroguard.model import Platform


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("linux/amd64", ("linux", "amd64", None)),
        ("linux/arm64/v8", ("linux", "arm64", "v8")),
        ("linux/arm/v6", ("linux", "arm", "v6")),
        (" windows/amd64 ", ("windows", "amd64", None)),
    ],
)
def test_parse_and_str(text: str, parts: tuple[str, str, str | None]) -> None:
    platform = Platform.parse(text)
    assert (platform.os, platform.architecture, platform.variant) == parts
    assert Platform.parse(str(platform)) == platform


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", "linux//v8", ""])
def test_bad_platforms_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected os/architecture\[/variant\]"):
        Platform.parse(text)


@pytest.mark.parametrize(
    ("wanted", "entry", "matches"),
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/amd64", "linux/arm64", False),
        ("linux/arm64", "linux/arm64/v8", True),  # v8 is arm64's default variant
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm/v7", "linux/arm/v6", False),
        ("linux/arm", "linux/arm/v6", True),  # no variant asked: any will do
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_matching(wanted: str, entry: str, matches: bool) -> None:
    assert Platform.parse(wanted).matches(Platform.parse(entry)) is matches


def test_platform_lists() -> None:
    from distroguard.model.platform import parse_platforms, platforms_text

    assert parse_platforms("all") is None
    assert parse_platforms(" ALL ") is None
    listed = parse_platforms("linux/amd64, linux/arm64/v8,linux/amd64")
    assert listed == (Platform.parse("linux/amd64"), Platform.parse("linux/arm64/v8"))
    assert platforms_text(listed) == "linux/amd64,linux/arm64/v8"
    assert platforms_text(None) == "all"
    for bad in ("", ",", "linux", "linux/amd64,arm64"):
        with pytest.raises(ValueError, match="invalid platform"):
            parse_platforms(bad)
