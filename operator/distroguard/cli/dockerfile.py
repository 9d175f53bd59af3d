"""The base images a Dockerfile builds on, so CI can check them before anything is built.

Reads what BuildKit reads for `FROM`: line continuations, comments, `ARG` defaults declared before the
first `FROM` (and `--build-arg` overrides), `FROM [--platform=...] IMAGE [AS NAME]`, and stages built on
earlier stages (followed back to the image they start from). `scratch` is no image. A stage's `--platform`
is the platform its base is pulled for, unless it names one of BuildKit's automatic platform arguments
(`$BUILDPLATFORM`, `$TARGETPLATFORM`...: the machine's or the build's, not known here). Pure: text in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from distroguard.model import Platform

_ARG = re.compile(r"(?i)^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$")
_FROM = re.compile(r"(?i)^FROM\s+(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$")
#: BuildKit's automatic platform arguments: they depend on the build, not on the Dockerfile.
_AUTOMATIC = re.compile(r"\$\{?(BUILD|TARGET)(PLATFORM|OS|ARCH|VARIANT)\b")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(ValueError):
    """The Dockerfile cannot be read for its base images; the message names the line."""


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    """The image reference the stage starts from, or another stage's name."""
    line: int
    platform: Platform | None = None
    """The platform `FROM --platform=` names, when the Dockerfile alone decides it."""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction) with continuations joined and comments dropped."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((start, pending + stripped))
        pending = ""
    if pending:
        lines.append((start, pending.strip()))
    return lines


def _substitute(text: str, values: Mapping[str, str], line: int) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in values and values[name] != "":
            return values[name]
        if match.group(2) is not None:
            return match.group(2)
        raise DockerfileError(f"line {line}: ${name} has no value (declare it with ARG before FROM)")

    return _VARIABLE.sub(replace, text)


def stages(text: str, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    args: dict[str, str] = {}
    found: list[Stage] = []
    for line, instruction in _logical_lines(text):
        keyword = instruction.split(None, 1)[0].upper()
        if keyword == "ARG" and not found:
            match = _ARG.match(instruction)
            if match is None:
                raise DockerfileError(f"line {line}: cannot read ARG {instruction!r}")
            name, default = match.group(1), (match.group(2) or "").strip().strip("\"'")
            args[name] = (build_args or {}).get(name, default)
        elif keyword == "FROM":
            match = _FROM.match(instruction)
            if match is None:
                raise DockerfileError(f"line {line}: expected FROM [--platform=...] IMAGE [AS NAME]")
            base = _substitute(match.group(2), args, line)
            name = match.group(3).lower() if match.group(3) else None
            found.append(Stage(len(found), name, base, line, _platform(match.group(1), args, line)))
    if not found:
        raise DockerfileError("no FROM instruction: not a Dockerfile")
    return found


def _platform(text: str | None, args: Mapping[str, str], line: int) -> Platform | None:
    if text is None or _AUTOMATIC.search(text):
        return None
    value = _substitute(text, args, line)
    try:
        return Platform.parse(value)
    except ValueError as exc:
        raise DockerfileError(f"line {line}: --platform={text}: {exc}") from None


def base_images(
    text: str, *, all_stages: bool = False, build_args: Mapping[str, str] | None = None
) -> list[str]:
    """The images the final stage (or, with `all_stages`, every stage) starts from, without repeats."""
    return [
        image for image, _ in base_images_with_platforms(text, all_stages=all_stages, build_args=build_args)
    ]


def base_images_with_platforms(
    text: str, *, all_stages: bool = False, build_args: Mapping[str, str] | None = None
) -> list[tuple[str, Platform | None]]:
    """As `base_images`, each with the platform its stage's `FROM --platform=` pins (None: not pinned). A
    stage built on an earlier stage is pinned by its own `--platform`, else by the earlier stage's."""
    return [
        (base.image, base.platform)
        for base in base_image_stages(text, all_stages=all_stages, build_args=build_args)
    ]


@dataclass(frozen=True)
class BaseImage:
    image: str
    platform: Platform | None
    line: int
    """The line of the FROM that names the image (for a stage built on an earlier stage, the earlier one's:
    the line to change)."""


def base_image_stages(
    text: str, *, all_stages: bool = False, build_args: Mapping[str, str] | None = None
) -> list[BaseImage]:
    """As `base_images_with_platforms`, each with the line of the FROM that names it (the first, when
    several stages start from the same image)."""
    found = stages(text, build_args)
    by_name = {stage.name: stage for stage in found if stage.name}

    def origin(stage: Stage) -> BaseImage:
        seen: set[int] = set()
        platform = stage.platform
        while stage.base.lower() in by_name and stage.index not in seen:
            seen.add(stage.index)
            earlier = by_name[stage.base.lower()]
            if earlier.index >= stage.index:
                break
            stage = earlier
            platform = platform or stage.platform
        return BaseImage(stage.base, platform, stage.line)

    chosen = found if all_stages else [found[-1]]
    images: list[BaseImage] = []
    for stage in chosen:
        base = origin(stage)
        if base.image.lower() != "scratch" and base.image not in (i.image for i in images):
            images.append(base)
    return images
