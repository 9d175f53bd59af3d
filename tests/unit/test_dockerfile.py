"""Base images from Dockerfiles: stages, ARGs, continuations, scratch."""

from __future__ import annotations

import pytest

from distroguard.cli.dockerfile import DockerfileError, base_images

MULTI = """\
# syntax=docker/dockerfile:1
ARG PYTHON=3.12
ARG DISTRO=bookworm
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
RUN go build -o /out/app ./...

FROM python:${PYTHON}-slim-${DISTRO} AS base
RUN pip install \\
    requests \\
    # a comment inside a continuation
    flask

from base as final
COPY --from=build /out/app /usr/local/bin/app
"""


def test_the_final_stage_is_followed_back_to_its_image() -> None:
    assert base_images(MULTI) == ["python:3.12-slim-bookworm"]


def test_every_stage_on_request() -> None:
    assert base_images(MULTI, all_stages=True) == ["golang:1.22-alpine", "python:3.12-slim-bookworm"]


def test_build_args_override_defaults() -> None:
    assert base_images(MULTI, build_args={"PYTHON": "3.11", "DISTRO": "trixie"}) == [
        "python:3.11-slim-trixie"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM scratch\nCOPY app /\n", []),
        ("FROM alpine:3.19\n", ["alpine:3.19"]),
        ("ARG V\nFROM node:${V:-20}-bookworm-slim\n", ["node:20-bookworm-slim"]),
        (
            "FROM registry.example.com:5000/base@sha256:" + "a" * 64 + "\n",
            [f"registry.example.com:5000/base@sha256:{'a' * 64}"],
        ),
    ],
)
def test_simple_files(text: str, expected: list[str]) -> None:
    assert base_images(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN echo hi\n", "no FROM instruction"),
        ("FROM\n", "line 1: expected FROM"),
        ("\n\nFROM python:$TAG\n", "line 3: $TAG has no value"),
        ("ARG\nFROM x\n", "line 1: cannot read ARG"),
    ],
)
def test_unreadable_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("$", r"\$")):
        base_images(text)


def test_from_platform_pins_the_base_unless_buildkit_fills_it_in() -> None:
    from distroguard.cli.dockerfile import base_images_with_platforms
    from distroguard.model import Platform

    text = (
        "ARG ARCH=arm64\n"
        "FROM --platform=linux/$ARCH python:3.12 AS build\n"
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS tools\n"
        "FROM build AS final\n"
    )
    assert base_images_with_platforms(text, all_stages=True) == [
        ("python:3.12", Platform.parse("linux/arm64")),
        ("golang:1.22", None),
    ]
    # The final stage is built on `build`: its pin follows.
    assert base_images_with_platforms(text) == [("python:3.12", Platform.parse("linux/arm64"))]
    assert base_images_with_platforms(text, build_args={"ARCH": "arm/v7"}) == [
        ("python:3.12", Platform.parse("linux/arm/v7"))
    ]
