"""`distroguard audit`'s options, checked before any cluster is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main

POLICY = str(Path(__file__).resolve().parents[2] / "policies" / "no-musl.yaml")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["-n", "a", "-A", "--policy", POLICY], "not both"),
        ([], "--policy FILE_OR_DIR or --cluster-policies"),
        (["--policy", POLICY, "--cluster-policies"], "--policy FILE_OR_DIR or --cluster-policies"),
        (["--policy", POLICY, "-o", "html"], "--out FILE"),
    ],
)
def test_usage_errors_exit_2(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(main, ["audit", *args])
    assert result.exit_code == 2
    assert complaint in result.stderr


def test_an_unreadable_kubeconfig_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(main, ["audit", "--kubeconfig", str(missing), "--policy", POLICY])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot load the kubeconfig")


def test_help_documents_the_json_shape() -> None:
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    for key in ('"kind": "DistroguardAudit"', '"workloads"', '"findings"', '"eolState"', "Exit status"):
        assert key in result.stdout
