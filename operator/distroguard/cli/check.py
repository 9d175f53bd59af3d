"""`distroguard check`: resolve images, evaluate policies, and fail a pipeline on violations."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from distroguard.cli.images import (
    LookupOptions,
    Result,
    image_options,
    lookup_options,
    report_failures,
    resolve_all,
)
from distroguard.cli.proxies import PROXY_EPILOG
from distroguard.cli.render import Line, facts_json, print_lines
from distroguard.eol import default_cache_path, load_catalog
from distroguard.errors import DistroguardError
from distroguard.model import Decision, ImageFacts, Verdict
from distroguard.model.exception import DEFAULT_MAX_DAYS, DistroPolicyException, ExceptionLimits
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policy.exceptions import ExceptionTarget, apply_exceptions, exception_warning
from distroguard.policy.scanning import scan_mode
from distroguard.policyfiles import load_exceptions, load_policies

EXIT_VIOLATIONS = 1
EXIT_ERRORS = 2
_RANK: dict[Verdict, int] = {"allow": 0, "warn": 1, "deny": 2}
_STYLE: dict[Verdict, str] = {"allow": "green", "warn": "yellow", "deny": "bold red"}


def _result_json(image: str, facts: ImageFacts, decision: Decision) -> dict[str, Any]:
    from distroguard.audit.jsonreport import exception_json  # the audit's JSON form: loaded only for -o json

    return {
        "image": image,
        "platform": facts.platform,
        "digest": facts.digest,
        "facts": facts_json(facts),
        "verdict": decision.verdict,
        "findings": [
            {
                "policy": f.policy,
                "rule": f.rule,
                "action": f.action,
                "severity": f.severity,
                "message": f.message,
                **({"suggestion": f.suggestion} if f.suggestion else {}),
                **({"exception": exception_json(f.exception)} if f.exception is not None else {}),
            }
            for f in decision.findings
        ],
    }


def _lines(results: Sequence[tuple[str, ImageFacts, Decision]]) -> Iterator[Line]:
    for image, facts, decision in results:
        os = f"{facts.os.id} {facts.os.version_id or ''}".strip() if facts.os else "no OS"
        libc = f"{facts.libc.family} {facts.libc.version or ''}".strip()
        yield (
            (decision.verdict.upper(), _STYLE[decision.verdict]),
            (f"  {image}  ({facts.platform}: {os}, {libc})", None),
        )
        for finding in decision.findings:
            where = f"{finding.policy}/{finding.rule}"
            if finding.exception is not None:
                excepted = exception_warning(finding)
                text = excepted or f"allowed by exception {finding.exception.exception}: {finding.message}"
                yield (("  ", None), ("skip", "cyan"), (f"  {where}: {text}", None))
            else:
                yield ((f"  {finding.action:<5} {where}: {finding.message}", None),)


@click.command(epilog=PROXY_EPILOG.format(what="registries"))
@click.argument("images", nargs=-1)
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A policy file or a directory of them (repeatable).",
)
@click.option(
    "--dockerfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Check its base images.",
)
@click.option(
    "--all-stages", is_flag=True, help="With --dockerfile: every stage's base, not just the final one."
)
@click.option("--build-arg", multiple=True, metavar="NAME=VALUE", help="With --dockerfile: an ARG value.")
@click.option(
    "--exception",
    "exception_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A DistroPolicyException file or a directory of them (repeatable): applied as the cluster applies "
    "them (only live ones; the images each names), so that CI sees what the cluster will do.",
)
@click.option(
    "--exception-max-days",
    type=int,
    default=DEFAULT_MAX_DAYS,
    show_default=True,
    help="As the cluster's: an exception whose expires is further ahead is ignored, with a warning.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "sarif", "junit", "github"]),
    default="table",
    show_default=True,
    help="sarif: SARIF 2.1.0 (code scanning); junit: JUnit XML (test reports); github: GitHub Actions "
    "annotations, on the Dockerfile's FROM line with --dockerfile.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "warn"]),
    default="deny",
    show_default=True,
    help="Exit 1 when a verdict is at least this.",
)
@image_options
def check(
    images: tuple[str, ...],
    policy_paths: tuple[Path, ...],
    exception_paths: tuple[Path, ...],
    exception_max_days: int,
    dockerfile: Path | None,
    all_stages: bool,
    build_arg: tuple[str, ...],
    output: str,
    fail_on: str,
    platform_text: str,
    thorough: bool,
    insecure_registry: tuple[str, ...],
    docker_config: str | None,
) -> None:
    """Resolve each IMAGE and evaluate the policies against it.

    Each image is judged on each platform --platform names (all: every one it offers); a base image of
    --dockerfile whose FROM names a --platform on that one alone. Exit status: 0 when no verdict (of any
    platform) reaches --fail-on, 1 when one does, 2 on errors (a bad policy file, an image that cannot be
    resolved, a platform asked for by name that an image does not offer).
    """
    options = lookup_options(platform_text, thorough, insecure_registry, docker_config)
    try:
        policies = load_policies(policy_paths)
        exceptions = load_exceptions(exception_paths) if exception_paths else []
    except DistroguardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERRORS)
    options = dataclasses.replace(options, mode=scan_mode(policies, options.mode))
    now = datetime.now(UTC)
    exceptions = _usable(exceptions, ExceptionLimits(exception_max_days), now)
    wanted = list(images)
    pinned: dict[str, LookupOptions] = {}
    if dockerfile is not None:
        from distroguard.cli.dockerfile import DockerfileError, base_images_with_platforms

        args = dict(item.partition("=")[::2] for item in build_arg)
        try:
            found = base_images_with_platforms(dockerfile.read_text(), all_stages=all_stages, build_args=args)
        except (DockerfileError, OSError, UnicodeDecodeError, ValueError) as exc:
            click.echo(f"error: {dockerfile}: {exc}", err=True)
            sys.exit(EXIT_ERRORS)
        for base, platform in found:
            if base in wanted:
                continue
            wanted.append(base)
            if platform is not None:  # FROM --platform=...: that platform alone, whatever --platform says
                pinned[base] = dataclasses.replace(options, platform=platform, platforms=())
    if not wanted:
        raise click.UsageError("give at least one IMAGE or --dockerfile")
    loaded = load_catalog(default_cache_path())
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    free = [image for image in wanted if image not in pinned]
    by_image: dict[str, list[Result]] = {}
    for image, result in resolve_all(free, options):
        by_image.setdefault(image, []).append((image, result))
    for image, own in pinned.items():
        by_image[image] = resolve_all([image], own)
    results = [item for image in wanted for item in by_image.get(image, [])]
    context = EvaluationContext(now=now)
    checked = [
        (
            image,
            facts,
            apply_exceptions(
                evaluate([ContainerImage(image, image, facts)], policies, context, loaded.catalog),
                exceptions,
                ExceptionTarget(),
                now,
            ),
        )
        for image, facts in results
        if isinstance(facts, ImageFacts)
    ]
    if output == "json":
        items = [_result_json(*item) for item in checked]
        one = len(wanted) == 1 and not options.several
        click.echo(json.dumps(items[0] if one and items else items, indent=2))
    elif output == "table":
        print_lines(_lines(checked))
    else:
        from distroguard.cli.reports.commands import check_report  # only a CI report needs it

        text = check_report(output, results, checked, policies, now, dockerfile, all_stages, build_arg)
        click.echo(text, nl=False)
    if report_failures(results):
        sys.exit(EXIT_ERRORS)
    threshold = _RANK["warn" if fail_on == "warn" else "deny"]
    sys.exit(EXIT_VIOLATIONS if any(_RANK[d.verdict] >= threshold for _, _, d in checked) else 0)


def _usable(
    exceptions: Sequence[DistroPolicyException], limits: ExceptionLimits, now: datetime
) -> list[DistroPolicyException]:
    """The exceptions the cluster would honour now; each one left out is told on stderr, as the operator
    logs it."""
    kept = []
    for exception in exceptions:
        problems = limits.problems(exception, now)
        if problems:
            click.echo(f"warning: exception {exception.ref} is ignored: {'; '.join(problems)}", err=True)
        elif exception.spec.ends <= now:
            click.echo(
                f"warning: exception {exception.ref} expired at {exception.spec.expires} and is ignored",
                err=True,
            )
        else:
            kept.append(exception)
    return kept
