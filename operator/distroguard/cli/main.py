"""`distroguard`: the command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console

from distroguard import __version__
from distroguard.cli.eol import eol
from distroguard.cli.render import render_json, render_table
from distroguard.errors import DistroguardError
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import CredentialStore
from distroguard.resolver import Resolver

EXIT_UNRESOLVED = 2
SAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "samples" / "python-bookworm"


def _docker_config(path: str | None) -> CredentialStore:
    if path:
        return CredentialStore.from_docker_config(Path(path))
    default = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    return CredentialStore.from_docker_config(default) if default.is_file() else CredentialStore()


async def _inspect(
    images: Sequence[str],
    platform: Platform,
    mode: ScanMode,
    settings: RegistrySettings,
    credentials: CredentialStore,
) -> list[ImageFacts | DistroguardError]:
    async with RegistryClient(settings, credentials) as client:
        resolver = Resolver(client)

        async def one(image: str) -> ImageFacts | DistroguardError:
            try:
                return await resolver.resolve(image, platform, mode)
            except DistroguardError as exc:
                return exc

        return list(await asyncio.gather(*(one(image) for image in images)))


@click.group()
@click.version_option(__version__, prog_name="distroguard")
def main() -> None:
    """Know, and control, what your cluster's images are built on."""


main.add_command(eol)


@main.command()
@click.argument("images", nargs=-1)
@click.option(
    "--platform",
    "platform_text",
    default="linux/amd64",
    show_default=True,
    help="os/arch[/variant] to pick from a multi-platform image.",
)
@click.option("--thorough", is_flag=True, help="Read every layer (exact squashed view) instead of the base.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--insecure-registry",
    multiple=True,
    metavar="HOST",
    help="Allow plain HTTP to this registry host[:port] (loopback hosts always are).",
)
@click.option(
    "--docker-config",
    type=click.Path(dir_okay=False),
    help="Credentials file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).",
)
def inspect(
    images: tuple[str, ...],
    platform_text: str,
    thorough: bool,
    output: str,
    insecure_registry: tuple[str, ...],
    docker_config: str | None,
) -> None:
    """Resolve each IMAGE's base OS, libc and runtimes.

    IMAGE is a registry reference (python:3.12-slim), oci:PATH (an OCI image layout directory, optionally
    oci:PATH:TAG) or docker-archive:PATH (a `docker save` tarball). Without IMAGE, the sample image
    embedded in the package is inspected.
    """
    if not images:
        images = (f"oci:{SAMPLE_IMAGE}",)
        click.echo(f"no IMAGE given: inspecting the embedded sample image {images[0]}", err=True)
    try:
        platform = Platform.parse(platform_text)
        credentials = _docker_config(docker_config)
    except (ValueError, DistroguardError) as exc:
        raise click.BadParameter(str(exc)) from exc
    settings = RegistrySettings(insecure_registries=frozenset(insecure_registry))
    mode: ScanMode = "thorough" if thorough else "fast"
    results = asyncio.run(_inspect(images, platform, mode, settings, credentials))
    resolved = [r for r in results if isinstance(r, ImageFacts)]
    failed = [(image, r) for image, r in zip(images, results, strict=True) if not isinstance(r, ImageFacts)]
    if output == "json":
        click.echo(render_json(resolved, as_list=len(images) > 1))
    elif resolved:
        render_table(resolved, Console())
    for image, error in failed:
        click.echo(f"error: {image}: {error}", err=True)
    sys.exit(EXIT_UNRESOLVED if failed else 0)
