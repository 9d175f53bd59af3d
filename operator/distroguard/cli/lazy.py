"""A click group that imports a command's module only when that command is run (or its help shown).

`distroguard --version` and `distroguard --help` import none of the commands: each command's module (and
what it brings: the registry client, the Kubernetes client, kopf...) costs start-up time only to the command
that needs it. The group's own help lists every command with the one-line summary registered here, so it
needs no import either; a unit test holds each summary equal to what the command itself would show.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives, and what the group's help says of it."""

    target: str
    """`module:attribute` of the click command."""
    summary: str
    """The command's short help (`Command.get_short_help_str` with no length limit)."""

    def load(self) -> click.Command:
        """The command, its module imported with the cyclic garbage collector paused, and then all it made
        moved out of the collector's sight (`gc.freeze`). An import makes objects that live as long as the
        process (modules, classes, pydantic schemas): collections during it find nothing to free, and the
        first ones after it would traverse all of it again, for nothing. TLS contexts made by the import
        (aiohttp makes two) read the CA bundle at their first connection, not now (`deferredca`)."""
        from distroguard.cli.deferredca import deferred_ca  # imports ssl: only a command's import needs it

        module_name, _, attribute = self.target.partition(":")
        enabled = gc.isenabled()
        gc.disable()
        try:
            with deferred_ca():
                command = getattr(importlib.import_module(module_name), attribute)
            gc.freeze()
        finally:
            if enabled:
                gc.enable()
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is {type(command).__name__}, not a click command")
        return command


class LazyGroup(click.Group):
    """A `click.Group` whose `lazy_commands` are imported on first use.

    Invariant: a name is either in `commands` (loaded, or added eagerly) or only in `lazy_commands`; once
    loaded, a lazy command is kept in `commands` and never imported again.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self.lazy_commands[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, with a stand-in carrying the summary for each command not yet imported
        (it shortens the summary to the terminal's width exactly as the command would its help)."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=self.lazy_commands[name].summary)
            if not command.hidden:
                rows.append((name, command))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])
