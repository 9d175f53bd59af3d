"""The reports of `check` and `audit`, from what each command has at hand (imported only when a report
format is asked for)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from distroguard.cli.dockerfile import base_image_stages
from distroguard.cli.reports import Location, render
from distroguard.cli.reports.items import audited_containers, checked_images
from distroguard.model import Decision, ImageFacts
from distroguard.model.policy import DistroPolicy

if TYPE_CHECKING:  # only `audit` passes one, and has it imported
    from distroguard.audit.results import AuditResult


def artifact_path(path: Path) -> str:
    """The Dockerfile's path as CI annotations want it: relative to the working directory (the repository's
    root, in CI) when it is inside it, with forward slashes."""
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_posix()
    return Path(os.path.normpath(path)).as_posix()


def check_report(
    output: str,
    resolved: Sequence[tuple[str, ImageFacts | BaseException]],
    decisions: Sequence[tuple[str, ImageFacts, Decision]],
    policies: Sequence[DistroPolicy],
    now: datetime,
    dockerfile: Path | None = None,
    all_stages: bool = False,
    build_args: Sequence[str] = (),
) -> str:
    """`dockerfile`, `all_stages`, `build_args`: as `check` was given them (the Dockerfile was read
    already, so it reads again)."""
    locations: dict[str, Location] = {}
    if dockerfile is not None:
        where = artifact_path(dockerfile)
        args = dict(item.partition("=")[::2] for item in build_args)
        for base in base_image_stages(dockerfile.read_text(), all_stages=all_stages, build_args=args):
            locations[base.image] = Location(where, base.line)
    return render(output, checked_images(resolved, decisions, policies, now, locations), policies)


def audit_report(output: str, result: AuditResult, policies: Sequence[DistroPolicy]) -> str:
    return render(output, audited_containers(result), policies)
