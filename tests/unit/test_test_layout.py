"""The test tree's own rule: pytest imports the modules of tests/unit and tests/e2e (packages without an
`__init__.py`) by their bare names, so two modules with one name in those directories cannot both be
collected in one run ("import file mismatch"), and the whole suite stops at collection."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_bare_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for directory in sorted(p for p in TESTS.iterdir() if p.is_dir()):
        if (directory / "__init__.py").exists():
            continue  # a package: its modules are imported under its name
        for module in directory.glob("test_*.py"):
            where[module.name].append(directory.name)
    assert len(where) > 10, "no test modules found: the check looks in the wrong place"
    shared = {name: dirs for name, dirs in where.items() if len(dirs) > 1}
    assert not shared, f"test modules sharing a name across directories (rename one): {shared}"
