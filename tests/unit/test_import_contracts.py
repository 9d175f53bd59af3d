"""The import-linter contracts in pyproject.toml hold on the package, and each one catches what it is
there to catch: a copy of the package with one deliberately wrong import breaks that contract, and only
a wrong import makes it fail (the same copy without the import keeps it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "distroguard"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# contract id -> (module that gets the wrong import, the import)
WRONG_IMPORTS: dict[str, tuple[str, str]] = {
    "layers": ("model/facts.py", "import distroguard.resolver"),
    "admission-decides": ("admission/decide.py", "import distroguard.registry.client"),
    "operator-roles": ("operator/webhook/admitter.py", "import distroguard.operator.audit.auditor"),
    "registry-layers": ("registry/hosts.py", "import distroguard.registry.client"),
    "pure-core": ("scan/tree.py", "import socket"),
    "kopf-in-operator": ("admission/review.py", "import kopf"),
    "kubernetes-client-at-the-edges": ("resolver/cache.py", "import kubernetes"),
    "aiohttp-at-the-edges": ("audit/table.py", "import aiohttp"),
    "cachetools-where-caches-live": ("audit/results.py", "import cachetools"),
}


def contract_ids() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]


def lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on the package under `root/operator`, with the repository's contracts."""
    args = [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": str(root / "operator")}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(PACKAGE, root / "operator" / "distroguard", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_every_contract_has_a_wrong_import_that_breaks_it() -> None:
    assert sorted(contract_ids()) == sorted(WRONG_IMPORTS)


def test_the_package_keeps_every_contract() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(WRONG_IMPORTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("contract", sorted(WRONG_IMPORTS))
def test_a_wrong_import_breaks_its_contract(copy_root: Path, contract: str) -> None:
    module, line = WRONG_IMPORTS[contract]
    target = copy_root / "operator" / "distroguard" / module
    original = target.read_text(encoding="utf-8")
    assert lint(copy_root, contract).returncode == 0  # the copy keeps it before the wrong import
    target.write_text(f"{original}\n{line}  # deliberately wrong\n", encoding="utf-8")
    try:
        result = lint(copy_root, contract)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout


def test_a_module_left_out_of_the_operator_layers_breaks_them(copy_root: Path) -> None:
    """The operator's layers are exhaustive: a new module must be given its place."""
    stray = copy_root / "operator" / "distroguard" / "operator" / "stray.py"
    stray.write_text('"""A module no layer names."""\n', encoding="utf-8")
    try:
        result = lint(copy_root, "operator-roles")
    finally:
        stray.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stray" in result.stdout
