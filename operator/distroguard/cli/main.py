"""`distroguard`: the command line.

Start-up is part of the interface: CI runs `distroguard check` once per image. This module imports click
and nothing else of weight; each command's module is imported only when that command runs (`cli.lazy`), so
`inspect` never loads the Kubernetes client and `--version` loads none of the commands. A unit test fails
when importing this module pulls in kopf, kubernetes, the audit or the admission packages.
"""

from __future__ import annotations

import os

import click

from distroguard import __version__
from distroguard.cli.lazy import LazyCommand, LazyGroup

# pydantic looks for plugins by scanning every installed distribution's entry points when it builds its
# first model; the command line uses none. Set before any model is built; a value already set is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

COMMANDS = {
    "audit": LazyCommand(
        "distroguard.cli.audit:audit",
        "Audit a cluster's workloads: what their images are built on, and what the policies say.",
    ),
    "check": LazyCommand(
        "distroguard.cli.check:check", "Resolve each IMAGE and evaluate the policies against it."
    ),
    "drain": LazyCommand(
        "distroguard.cli.drain:drain",
        "Drain this pod's webhook connections, then wait.",
    ),
    "eol": LazyCommand(
        "distroguard.cli.eol:eol", "The end-of-life catalog (endoflife.date data): show it, refresh it."
    ),
    "inspect": LazyCommand(
        "distroguard.cli.inspect:inspect",
        "Resolve each IMAGE's base OS, libc and runtimes (on each platform asked for: one result each).",
    ),
    "run": LazyCommand("distroguard.cli.run:run", "Run the admission controller."),
}
"""Every command of `distroguard`: where it lives, and its summary for `distroguard --help`."""


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(__version__, prog_name="distroguard")
def main() -> None:
    """Know, and control, what your cluster's images are built on."""
