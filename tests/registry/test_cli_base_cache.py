"""The CLI remembers base images across runs, in a file of its own (bounded, replaced whole, and started
afresh when unreadable)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from click.testing import CliRunner

from distroguard.cli.main import main
from support.distros import DEBIAN_12_ROOT
from support.images import BuiltImage, ImageBuilder, push
from support.registry_server import RegistryServer


def pushed(registry: RegistryServer, repo: str, tag: str, image: BuiltImage) -> str:
    asyncio.run(push(registry.url, repo, tag, image))
    return f"{registry.address}/{repo}:{tag}"


def inspect_json(ref: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["inspect", ref, "--output", "json"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_base_resolved_in_one_run_is_named_in_the_next(registry: RegistryServer, repo: str) -> None:
    base = pushed(registry, repo, "base", ImageBuilder().layer(DEBIAN_12_ROOT).build())
    app = pushed(registry, repo, "app", ImageBuilder().layer(DEBIAN_12_ROOT).layer({"/srv/a": b"a"}).build())
    cache = Path(os.environ["DISTROGUARD_BASES_CACHE"])
    assert inspect_json(app)["base"] is None  # nothing known yet
    inspect_json(base)  # a run of its own: the base's chain is kept in the file
    assert len(json.loads(cache.read_text())["chains"]) == 2
    found = inspect_json(app)["base"]
    assert isinstance(found, dict)
    assert (found["reference"], found["how"]) == (base, "known-base")


def test_an_unreadable_cache_is_started_afresh_with_a_warning(registry: RegistryServer, repo: str) -> None:
    cache = Path(os.environ["DISTROGUARD_BASES_CACHE"])
    cache.write_text("{not json")
    ref = pushed(registry, repo, "any", ImageBuilder().layer(DEBIAN_12_ROOT).build())
    result = CliRunner().invoke(main, ["inspect", ref, "--output", "json"])
    assert result.exit_code == 0, result.output
    assert f"warning: the base-image cache {cache} is unreadable" in result.stderr
    assert json.loads(cache.read_text())["format"] == 1  # replaced whole by a good one
