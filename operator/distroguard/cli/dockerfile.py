"""The base images a Dockerfile builds on, so CI can check them before anything is built.

Reads what BuildKit reads for `FROM`: line continuations, comments, `ARG` defaults declared before the
first `FROM` (and `--build-arg` overrides), `FROM [--platform=...] IMAGE [AS NAME]`, and stages built on
earlier stages (followed back to the image they start from). `scratch` is no image. Pure: text in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_ARG = re.compile(r"(?i)^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$")
_FROM = re.compile(r"(?i)^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$")
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
            base = _substitute(match.group(1), args, line)
            found.append(Stage(len(found), match.group(2).lower() if match.group(2) else None, base, line))
    if not found:
        raise DockerfileError("no FROM instruction: not a Dockerfile")
    return found


def base_images(
    text: str, *, all_stages: bool = False, build_args: Mapping[str, str] | None = None
) -> list[str]:
    """The images the final stage (or, with `all_stages`, every stage) starts from, without repeats."""
    found = stages(text, build_args)
    by_name = {stage.name: stage for stage in found if stage.name}

    def origin(stage: Stage) -> str:
        seen: set[int] = set()
        while stage.base.lower() in by_name and stage.index not in seen:
            seen.add(stage.index)
            earlier = by_name[stage.base.lower()]
            if earlier.index >= stage.index:
                break
            stage = earlier
        return stage.base

    chosen = found if all_stages else [found[-1]]
    images: list[str] = []
    for stage in chosen:
        image = origin(stage)
        if image.lower() != "scratch" and image not in images:
            images.append(image)
    return images
