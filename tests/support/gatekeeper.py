"""Gatekeeper's policy tools, built from its Go module (tools/gator) by `scripts/testenv gatekeeper` and
cached under the test environment's cache, beside the control plane:

- `gator`: Gatekeeper's own CLI (`gator verify` runs a suite of ConstraintTemplate tests);
- `externaldata`: Gatekeeper's engine (`gator test`'s) with external data enabled, so that a template's
  external_data call reaches a real provider (tools/gator/externaldata/main.go).

A missing build is a test failure that says how to make it, never a skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from support import gotools
from support.kube import cache_root

GATEKEEPER_VERSION = "v3.23.1"
"""github.com/open-policy-agent/gatekeeper/v3 in tools/gator/go.mod (`scripts/testenv gatekeeper` checks)."""


def gatekeeper_dir() -> Path:
    return cache_root() / f"gatekeeper-{GATEKEEPER_VERSION}"


@dataclass(frozen=True)
class GatekeeperTools:
    gator: Path
    externaldata: Path

    @classmethod
    def at(cls, bin_dir: Path) -> GatekeeperTools:
        return cls(bin_dir / "gator", bin_dir / "externaldata")

    @classmethod
    def locate(cls) -> GatekeeperTools:
        gotools.wait_for_background_build()
        tools = cls.at(gatekeeper_dir() / "bin")
        missing = [p.name for p in (tools.gator, tools.externaldata) if not p.is_file()]
        if missing:
            pytest.fail(
                f"Gatekeeper {GATEKEEPER_VERSION}'s {', '.join(missing)} not built in {tools.gator.parent}: "
                f"run `scripts/testenv gatekeeper`{gotools.missing_hint()}"
            )
        return tools
