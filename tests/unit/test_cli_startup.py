"""The CLI starts light: `import distroguard.cli.main` (what the `distroguard` script does first) loads none
of the heavy packages, each command imports only what it needs, and the lazy group's help still lists
every command with its own summary.

Imports are observed in a fresh interpreter (this test process has long since imported everything)."""

from __future__ import annotations

import gc
import importlib
import io
import json
import os
import subprocess
import sys
import tomllib
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


def _pythonpath() -> str:
    return os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])


def loaded_after(code: str) -> set[str]:
    """The names in sys.modules of a fresh interpreter once `code` has run."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
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


#: Loaded by `inspect` of a registry image only when the image needs them: the local image sources (and
#: `tarfile`), the rpm database reader's sqlite3.
ON_DEMAND = (
    "tarfile",
    "sqlite3",
    "distroguard.registry.layout",
    "distroguard.registry.archive",
    "distroguard.registry.localfiles",
)


def test_image_commands_load_what_they_use_on_demand() -> None:
    modules = loaded_after("import distroguard.cli.inspect, distroguard.cli.check")
    assert under(modules, ON_DEMAND) == set()
    assert "distroguard.cli.dockerfile" not in modules  # check's --dockerfile alone reads one


def test_on_demand_modules_are_loaded_when_used() -> None:
    """The probe above is not blind: naming a local image, or reading an rpm database, loads them."""
    modules = loaded_after(
        "from distroguard.registry.source import open_source\n"
        "from distroguard.scan.rpm.sqlite import header_blobs\n"
        "open_source('oci:/nonexistent', client=None)  # type: ignore[arg-type]\n"
        "try:\n    list(header_blobs(b'SQLite format 3\\x00' + bytes(100)))\nexcept Exception:\n    pass"
    )
    assert {"tarfile", "sqlite3", "distroguard.registry.layout"} <= modules


def test_no_plugin_scan_and_no_distribution_metadata_read() -> None:
    """pydantic's plugin lookup scans every installed distribution's entry points; the command line turns
    it off, and the registry client's User-Agent takes the package's own version rather than reading the
    installed metadata. The probe fails on any read of distribution metadata while the facts models are
    built and the image options are parsed."""
    loaded_after(
        "import importlib.metadata as m\n"
        "def refuse(*a, **k):\n    raise AssertionError('distribution metadata read')\n"
        "m.entry_points = m.version = m.distributions = refuse\n"
        "import distroguard.cli.main\n"
        "from distroguard.cli.images import lookup_options\n"
        "from distroguard.model import ImageFacts\n"
        "lookup_options('linux/amd64', False, (), None, {})\n"
    )


def test_a_plugin_setting_of_the_environment_is_kept() -> None:
    kept = loaded_after(
        "import os\nos.environ['PYDANTIC_DISABLE_PLUGINS'] = 'one'\nimport distroguard.cli.main"
    )
    assert "distroguard.cli.main" in kept
    code = "import os, distroguard.cli.main\nprint(os.environ['PYDANTIC_DISABLE_PLUGINS'])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYDANTIC_DISABLE_PLUGINS": "one", "PYTHONPATH": _pythonpath()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "one"


def test_the_user_agent_names_the_distribution_version() -> None:
    from distroguard.registry.settings import RegistrySettings

    pyproject = tomllib.loads((PACKAGE_ROOT.parent / "pyproject.toml").read_text())
    assert distroguard.__version__ == pyproject["project"]["version"]
    assert RegistrySettings().user_agent == f"distroguard/{pyproject['project']['version']}"


def test_a_command_imports_with_the_collector_paused_and_restores_it() -> None:
    seen: list[bool] = []
    probe = LazyCommand("distroguard.cli.check:check", "x")
    original = importlib.import_module

    def spy(name: str) -> object:
        if name == "distroguard.cli.check":
            seen.append(gc.isenabled())
        return original(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib, "import_module", spy)
        try:
            gc.unfreeze()
            assert gc.isenabled()
            probe.load()
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0  # what the import made is out of the collector's sight
            gc.disable()
            try:
                probe.load()
                assert not gc.isenabled()  # a collector the caller had turned off stays off
            finally:
                gc.enable()
        finally:
            gc.unfreeze()  # this test process goes on collecting as before
    assert seen == [False, False]


def test_check_builds_no_exception_model_until_one_is_read() -> None:
    """The exception models defer their schemas: `check` without --exception never validates one."""
    probe = (
        "import distroguard.cli.check\n"
        "from distroguard.model.exception import DistroPolicyException as E\n"
        "print(E.__pydantic_complete__)\n"
        "E.model_validate({'apiVersion': 'distroguard.dev/v1alpha1', 'kind': 'DistroPolicyException', "
        "'metadata': {'name': 'x'}, 'spec': {'policies': [{'policyName': 'p'}], 'expires': '2030-01-01', "
        "'reason': 'r'}})\n"
        "print(E.__pydantic_complete__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


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
