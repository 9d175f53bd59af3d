"""What `inspect` and `check` share: the image options, and resolving many images at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.registry.hosts import parse_mirrors
from distroguard.resolver import Resolver
from distroguard.resolver.many import resolve_many

F = TypeVar("F", bound=Callable[..., Any])

#: Where `--registry-mirror` leaves its parsed value (in the click context's `meta`), so the commands
#: taking the image options need no parameter of their own for it: `lookup_options` reads it.
MIRRORS_KEY = "distroguard.registry_mirrors"


@dataclass(frozen=True)
class LookupOptions:
    platform: Platform
    mode: ScanMode
    settings: RegistrySettings
    credentials: CredentialStore


def image_options(command: F) -> F:
    """The options every command that resolves images takes."""
    decorators = [
        click.option(
            "--platform",
            "platform_text",
            default="linux/amd64",
            show_default=True,
            help="os/arch[/variant] to pick from a multi-platform image.",
        ),
        click.option(
            "--thorough", is_flag=True, help="Read every layer (exact squashed view), not just the base."
        ),
        click.option(
            "--insecure-registry",
            multiple=True,
            metavar="HOST",
            help="Allow plain HTTP to this registry host[:port] (loopback hosts always are).",
        ),
        click.option(
            "--registry-mirror",
            multiple=True,
            metavar="SOURCE=MIRROR",
            expose_value=False,
            callback=_store_mirrors,
            help="Send requests for images on registry SOURCE (e.g. docker.io) to MIRROR "
            "(host[:port][/prefix]); the mirror's credentials are used (repeatable).",
        ),
        click.option(
            "--docker-config",
            type=click.Path(dir_okay=False),
            help="Credentials file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _store_mirrors(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> None:
    try:
        ctx.meta[MIRRORS_KEY] = parse_mirrors(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def lookup_options(
    platform_text: str,
    thorough: bool,
    insecure_registry: Sequence[str],
    docker_config: str | None,
    registry_mirrors: Mapping[str, str] | None = None,
) -> LookupOptions:
    """The parsed image options; bad values become click's usage errors (exit 2) naming the option.

    `registry_mirrors` defaults to what `--registry-mirror` gave the running command (none outside
    a click command).
    """
    if registry_mirrors is None:
        ctx = click.get_current_context(silent=True)
        registry_mirrors = ctx.meta.get(MIRRORS_KEY, {}) if ctx is not None else {}
    try:
        platform = Platform.parse(platform_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--platform") from exc
    try:
        credentials = _docker_config(docker_config)
    except DistroguardError as exc:
        raise click.BadParameter(str(exc), param_hint="--docker-config") from exc
    return LookupOptions(
        platform=platform,
        mode="thorough" if thorough else "fast",
        settings=RegistrySettings(
            insecure_registries=frozenset(insecure_registry), registry_mirrors=dict(registry_mirrors)
        ),
        credentials=credentials,
    )


def _docker_config(path: str | None) -> CredentialStore:
    if path:
        return CredentialStore.from_docker_config(Path(path))
    default = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    return CredentialStore.from_docker_config(default) if default.is_file() else CredentialStore()


def resolve_all(images: Sequence[str], options: LookupOptions) -> list[ImageFacts | DistroguardError]:
    """Facts (or the error) for each image, in order, resolved concurrently through one client."""

    async def run() -> list[ImageFacts | DistroguardError]:
        async with RegistryClient(options.settings, options.credentials) as client:
            resolver = Resolver(client)
            outcomes = await resolve_many(
                {image: (image, resolver) for image in images},
                platform=options.platform,
                mode=options.mode,
            )
            return [outcomes[image] for image in images]

    return asyncio.run(run())


def report_failures(images: Sequence[str], results: Sequence[ImageFacts | DistroguardError]) -> bool:
    """One `error:` line per image that could not be resolved; whether there was any."""
    failed = False
    for image, result in zip(images, results, strict=True):
        if not isinstance(result, ImageFacts):
            click.echo(f"error: {image}: {result}", err=True)
            failed = True
    return failed
