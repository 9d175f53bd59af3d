"""`distroguard`: the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from distroguard import __version__
from distroguard.cli.audit import audit
from distroguard.cli.check import check
from distroguard.cli.eol import eol
from distroguard.cli.images import image_options, lookup_options, report_failures, resolve_all
from distroguard.cli.proxies import PROXY_EPILOG
from distroguard.cli.render import render_json, render_table
from distroguard.cli.run import run
from distroguard.model import ImageFacts

EXIT_UNRESOLVED = 2
SAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "samples" / "python-debian"


@click.group()
@click.version_option(__version__, prog_name="distroguard")
def main() -> None:
    """Know, and control, what your cluster's images are built on."""


main.add_command(eol)


@main.command(epilog=PROXY_EPILOG.format(what="registries"))
@click.argument("images", nargs=-1)
@image_options
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
def inspect(
    images: tuple[str, ...],
    platform_text: str,
    thorough: bool,
    insecure_registry: tuple[str, ...],
    docker_config: str | None,
    output: str,
) -> None:
    """Resolve each IMAGE's base OS, libc and runtimes (on each platform asked for: one result each).

    IMAGE is a registry reference (python:3.12-slim), oci:PATH (an OCI image layout directory, optionally
    oci:PATH:TAG) or docker-archive:PATH (a `docker save` tarball). Without IMAGE, the sample image
    embedded in the package is inspected.
    """
    options = lookup_options(platform_text, thorough, insecure_registry, docker_config)
    if not images:
        images = (f"oci:{SAMPLE_IMAGE}",)
        click.echo(f"no IMAGE given: inspecting the embedded sample image {images[0]}", err=True)
    results = resolve_all(images, options)
    resolved = [r for _, r in results if isinstance(r, ImageFacts)]
    if output == "json":
        click.echo(render_json(resolved, as_list=len(images) > 1 or options.several))
    elif resolved:
        render_table(resolved, Console())
    failed = report_failures(results)
    sys.exit(EXIT_UNRESOLVED if failed else 0)


main.add_command(check)
main.add_command(run)
main.add_command(audit)
