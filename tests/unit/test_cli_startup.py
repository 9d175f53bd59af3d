"""The CLI starts light: `import distroguard.cli.main` (what the `distroguard` script does first) loads none
of the heavy packages, each command imports only what it needs, and the lazy group's help still lists
every command with its own summary.

Imports are observed in a fresh interpreter (this test process has long since imported everything)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import distroguard
from distroguard.cli.lazy import LazyCommand, LazyGroup
from distroguard.cli.main import COMMANDS, main

PACKAGE_ROOT = Path(distroguard.__file__).resolve().parents[1]

#: Never loaded by `import distroguard.cli.main`: the operator's and the cluster audit's dependencies.
HEAVY = ("kopf", "kubernetes", "distroguard.audit", "distroguard.admission", "distroguard.operator")
#: Loaded by neither `inspect` nor `check`: they talk to registries, never to a cluster.
CLUSTER = ("kopf", "kubernetes", "distroguard.admission", "distroguard.operator", "distroguard.audit")
COMMAND_MODULES = tuple(sorted({c.target.partition(":")[0] for c in COMMANDS.values()}))


def loaded_after(code: str) -> set[str]:
    """The names in sys.modules of a fresh interpreter once `code` has run."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def under(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


def test_the_probe_sees_a_heavy_import() -> None:
    """Without this, an empty answer below could mean a broken probe rather than a light import."""
    assert {"kubernetes", "distroguard.audit.cluster"} <= under(
        loaded_after("import distroguard.cli.audit"), HEAVY
    )


def test_importing_the_cli_loads_no_heavy_package() -> None:
    modules = loaded_after("import distroguard.cli.main")
    assert under(modules, HEAVY) == set()
    assert under(modules, COMMAND_MODULES) == set()


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=lambda a: a[0])
def test_version_and_help_import_no_command(args: list[str]) -> None:
    modules = loaded_after(
        "from distroguard.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code"
    )
    assert under(modules, (*HEAVY, *COMMAND_MODULES)) == set()


@pytest.mark.parametrize("module", ["distroguard.cli.inspect", "distroguard.cli.check"])
def test_image_commands_load_nothing_of_the_cluster(module: str) -> None:
    assert under(loaded_after(f"import {module}"), CLUSTER) == set()


def test_inspect_loads_no_policy_model() -> None:
    """`inspect` judges nothing: the policy, exception and decision models (and their schemas) stay out."""
    models = under(loaded_after("import distroguard.cli.inspect"), ("distroguard.model",))
    assert "distroguard.model.facts" in models
    assert models.isdisjoint(
        {"distroguard.model.policy", "distroguard.model.exception", "distroguard.model.decision"}
    )


def test_every_command_is_registered_with_its_own_summary() -> None:
    ctx = click.Context(main, info_name="distroguard")
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name, lazy in COMMANDS.items():
        command = lazy.load()
        assert command.name == name
        assert lazy.summary == command.get_short_help_str(limit=10_000), name


def test_help_lists_every_command_as_click_would() -> None:
    """The summaries, shortened to the help's width, are what click prints for the loaded commands."""
    lazy_help = CliRunner().invoke(main, ["--help"])
    eager = click.Group("distroguard", help=main.help)
    for lazy in COMMANDS.values():
        eager.add_command(lazy.load())
    eager_help = CliRunner().invoke(eager, ["--help"])
    assert lazy_help.exit_code == 0
    commands = lazy_help.output.split("Commands:\n", 1)[1]
    assert commands == eager_help.output.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines()] == sorted(COMMANDS)


def test_a_command_is_imported_once_and_kept() -> None:
    group = LazyGroup(lazy_commands={"check": COMMANDS["check"]})
    ctx = click.Context(group)
    assert group.commands == {}
    first = group.get_command(ctx, "check")
    assert first is not None
    assert group.commands == {"check": first}
    assert group.get_command(ctx, "check") is first
    assert group.get_command(ctx, "nope") is None


def test_a_target_that_is_no_command_is_refused() -> None:
    with pytest.raises(TypeError, match="not a click command"):
        LazyCommand("distroguard.cli.main:COMMANDS", "x").load()


def test_the_console_highlights_only_where_colours_show(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.highlighter import NullHighlighter, ReprHighlighter

    from distroguard.cli.render import stdout_console

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert isinstance(stdout_console().highlighter, NullHighlighter)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert isinstance(stdout_console().highlighter, ReprHighlighter)
