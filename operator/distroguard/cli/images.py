"""What `inspect` and `check` share: the image options, and resolving many images at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from distroguard.cli.basecache import load_bases, save_bases
from distroguard.cli.proxies import environment_proxies
from distroguard.errors import DistroguardError, PlatformNotFound
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.model.facts import ImagePlatforms
from distroguard.model.platform import DEFAULT_PLATFORM, parse_platforms
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.registry.hosts import parse_mirrors
from distroguard.resolver import Resolver
from distroguard.resolver.many import resolve_many, resolve_many_platforms

F = TypeVar("F", bound=Callable[..., Any])

#: Where `--registry-mirror` leaves its parsed value (in the click context's `meta`), so the commands
#: taking the image options need no parameter of their own for it: `lookup_options` reads it.
MIRRORS_KEY = "distroguard.registry_mirrors"


Result = tuple[str, ImageFacts | DistroguardError]
"""One image on one platform: its facts, or why there are none (an image that failed: one error)."""


@dataclass(frozen=True)
class LookupOptions:
    platform: Platform
    """The one platform asked for (the first of a list; linux/amd64 for `all`)."""
    mode: ScanMode
    settings: RegistrySettings
    credentials: CredentialStore
    platforms: tuple[Platform, ...] | None = ()
    """With `--platform all` (None) or a list of several: the platforms judged; () for one platform."""

    @property
    def several(self) -> bool:
        """Whether each image is judged on several platforms (`all`, or a list)."""
        return self.platforms != ()


def image_options(command: F) -> F:
    """The options every command that resolves images takes."""
    decorators = [
        click.option(
            "--platform",
            "platform_text",
            default="linux/amd64",
            show_default=True,
            help="os/arch[/variant] to pick from a multi-platform image; a comma-separated list of them, "
            "or all (every platform the image offers, at most 16; attestations never): each is judged, "
            "one result per platform.",
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
        listed = parse_platforms(platform_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--platform") from exc
    platform = DEFAULT_PLATFORM if listed is None else listed[0]
    platforms = () if listed is not None and len(listed) == 1 else listed
    try:
        credentials = _docker_config(docker_config)
    except DistroguardError as exc:
        raise click.BadParameter(str(exc), param_hint="--docker-config") from exc
    return LookupOptions(
        platform=platform,
        mode="thorough" if thorough else "fast",
        settings=RegistrySettings(
            insecure_registries=frozenset(insecure_registry),
            registry_mirrors=dict(registry_mirrors),
            proxies=environment_proxies(),
        ),
        credentials=credentials,
        platforms=platforms,
    )


def _docker_config(path: str | None) -> CredentialStore:
    if path:
        return CredentialStore.from_docker_config(Path(path))
    default = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    return CredentialStore.from_docker_config(default) if default.is_file() else CredentialStore()


def resolve_all(images: Sequence[str], options: LookupOptions) -> list[Result]:
    """(image, facts or the error) for each image and each platform judged, in order, resolved concurrently
    through one client. With several platforms, a platform asked for by name that an image does not offer
    is an error of its own (PlatformNotFound)."""

    async def run() -> list[Result]:
        async with RegistryClient(options.settings, options.credentials) as client:
            resolver = Resolver(client)
            resolver.bases = bases
            lookups = {image: (image, resolver) for image in images}
            if not options.several:
                outcomes = await resolve_many(lookups, platform=options.platform, mode=options.mode)
                return [(image, outcomes[image]) for image in images]
            several = await resolve_many_platforms(lookups, platforms=options.platforms, mode=options.mode)
            return [item for image in images for item in _per_platform(image, several[image], options)]

    # Bases learnt in earlier runs name the bases of this one's images; this run's images are kept for later.
    bases = load_bases()
    try:
        return asyncio.run(run())
    finally:
        save_bases(bases)


def _per_platform(
    image: str, outcome: ImagePlatforms | DistroguardError, options: LookupOptions
) -> list[Result]:
    if isinstance(outcome, DistroguardError):
        return [(image, outcome)]
    wanted = options.platforms
    if wanted is None:
        if not outcome.facts:
            return [(image, PlatformNotFound("any", list(outcome.offered)))]
        return [(image, facts) for facts in outcome.facts]
    results: list[Result] = [
        (image, facts)
        for facts in outcome.facts
        if any(w.matches(Platform.parse(facts.platform)) for w in wanted)
    ]
    judged = [Platform.parse(facts.platform) for _, facts in results if isinstance(facts, ImageFacts)]
    results += [
        (image, PlatformNotFound(str(w), list(outcome.offered)))
        for w in wanted
        if not any(w.matches(found) for found in judged)
    ]
    return results


def report_failures(results: Sequence[Result]) -> bool:
    """One `error:` line per image (or platform of one) that could not be resolved; whether there was any."""
    failed = False
    for image, result in results:
        if not isinstance(result, ImageFacts):
            click.echo(f"error: {image}: {result}", err=True)
            failed = True
    return failed
