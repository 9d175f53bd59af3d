"""`distroguard check --output sarif|junit|github` end to end, on the samples embedded in the package (local
OCI layouts: no registry, no network), and `scripts/demo`, the README's first command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from distroguard.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "operator" / "distroguard" / "samples"
DEBIAN = f"oci:{SAMPLES / 'python-debian'}"
ALPINE = f"oci:{SAMPLES / 'python-alpine'}"
NO_MUSL = ROOT / "policies" / "no-musl.yaml"
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "--policy", str(NO_MUSL), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def dockerfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A two-stage Dockerfile in the working directory: built on Debian, shipped on Alpine (line 6)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "Dockerfile"
    path.write_text(
        f"ARG X=1\nFROM {DEBIAN} AS build\nRUN make\n\n# ship it\nFROM {ALPINE}\n"
        "COPY --from=build /app /app\n"
    )
    return path


@pytest.mark.parametrize("output", ["table", "json", "sarif", "junit", "github"])
def test_exit_codes_do_not_depend_on_the_output(output: str) -> None:
    assert check(ALPINE, "-o", output)[0] == 1
    assert check(DEBIAN, "-o", output)[0] == 0
    assert check(DEBIAN, "-o", output, "--fail-on", "warn")[0] == 0
    assert check(f"oci:{SAMPLES / 'missing'}", DEBIAN, "-o", output)[0] == 2


def test_sarif_of_a_dockerfile_points_at_the_from_lines(dockerfile: Path) -> None:
    code, out = check("--dockerfile", "Dockerfile", "--all-stages", "-o", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    (result,) = log["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("no-musl/no-musl", "error")
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "Dockerfile"},
        "region": {"startLine": 6},
    }
    assert result["locations"][0]["logicalLocations"][0]["name"] == ALPINE
    assert log["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_junit_of_a_dockerfile_has_a_suite_per_base_image(dockerfile: Path) -> None:
    code, out = check("--dockerfile", str(dockerfile), "--all-stages", "-o", "junit")
    assert code == 1
    root = ET.fromstring(out.encode())
    assert [suite.get("name") for suite in root.findall("testsuite")] == [DEBIAN, ALPINE]
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "2",
        "1",
        "0",
        "0",
    )
    failure = root.find(f"testsuite[@name='{ALPINE}']/testcase[@name='no-musl/no-musl']/failure")
    assert failure is not None
    assert "musl" in failure.get("message", "")


def test_github_annotations_of_a_dockerfile(dockerfile: Path) -> None:
    code, out = check("--dockerfile", "Dockerfile", "-o", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"DENY {ALPINE} (linux/amd64)"
    assert lines[1].startswith("::error file=Dockerfile,line=6,title=distroguard no-musl/no-musl::container ")
    assert len(lines) == 2


def test_audit_offers_the_same_formats() -> None:
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    assert "sarif" in result.stdout
    assert "junit" in result.stdout
    assert "github" in result.stdout


# scripts/demo


def test_each_sample_stays_small() -> None:
    for sample in ("python-debian", "python-alpine"):
        size = sum(p.stat().st_size for p in (SAMPLES / sample).rglob("*") if p.is_file())
        assert 0 < size < 1_000_000, f"{sample}: {size} bytes"


def test_the_demo_allows_the_debian_sample_and_denies_the_alpine_one(tmp_path: Path) -> None:
    """What scripts/demo prints, judged today with the EOL data the package ships: when a sample's release
    nears its end of support, move the samples on (scripts/make-sample-image)."""
    cli = tmp_path / "distroguard"
    cli.write_text(
        f'#!/bin/sh\nexec {sys.executable} -c "from distroguard.cli.main import main; main()" "$@"\n'
    )
    cli.chmod(0o755)
    env = {**os.environ, "DISTROGUARD": str(cli), "COLUMNS": "200"}
    ran = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert "os        debian 13 (trixie)" in out
    assert "libc      musl 1.2.5" in out
    verdicts = [line.split()[:2] for line in out.splitlines() if line.startswith(("ALLOW", "DENY", "WARN"))]
    assert verdicts == [
        ["ALLOW", "oci:operator/distroguard/samples/python-debian"],
        ["DENY", "oci:operator/distroguard/samples/python-alpine"],
    ], "a sample's verdict moved: refresh the samples (scripts/make-sample-image)"
    assert "python-base-images/no-musl" in out
    words = " ".join(out.split())  # the table wraps long messages
    # The sample ships Python 3.13: the hint names the official image of that runtime on Debian's slim base.
    assert (
        "musl is not allowed by policy python-base-images/no-musl; use a glibc-based image such as "
        "python:3.13-slim-" in words
    )
    assert "check exited 1" in out
    assert out.rstrip().splitlines()[-1].strip().startswith("helm install distroguard charts/distroguard")
