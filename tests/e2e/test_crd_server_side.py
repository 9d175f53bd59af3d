"""The DistroPolicy CRD as the real kube-apiserver applies it: the policies we ship pass its validation,
and malformed ones are refused by the API server itself (`kubectl apply --dry-run=server`), before
distroguard ever sees them. Dry runs store nothing; the CRD is removed afterwards if it was not there
before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codegen import crds
from support.kube import ControlPlane

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "charts" / "distroguard" / "crds" / crds.FILE_NAME
CRD_NAME = "distropolicies.distroguard.dev"
POLICIES = sorted((REPO / "policies").glob("*.yaml"))


@pytest.fixture(scope="module")
def crd(kube: ControlPlane) -> Iterator[None]:
    existed = kube.kubectl("get", "crd", CRD_NAME, check=False).returncode == 0
    try:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
        yield
    finally:
        if not existed:
            kube.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", check=False)


def dry_run(kube: ControlPlane, document: dict[str, Any] | Path) -> tuple[int, str]:
    if isinstance(document, Path):
        done = kube.kubectl("apply", "--dry-run=server", "-f", str(document), check=False)
    else:
        done = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(document), check=False)
    return done.returncode, done.stderr


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": "dry-run"},
        "spec": spec,
    }


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_shipped_policies_pass_the_api_server_s_validation(kube: ControlPlane, crd: None, path: Path) -> None:
    code, err = dry_run(kube, path)
    assert code == 0, err


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        (
            {"action": "block", "rules": [{"name": "r", "denyLibc": ["musl"]}]},
            "spec.action",
            "Unsupported value",
        ),
        ({"rules": []}, "spec.rules", "at least 1 items"),
        ({"rules": [{"name": "Bad_Name", "denyLibc": ["musl"]}]}, "spec.rules[0].name", "should match"),
        (
            {"rules": [{"name": "r", "denyLibc": ["uclibc"]}]},
            "spec.rules[0].denyLibc[0]",
            "Unsupported value",
        ),
        ({"rules": [{"name": "r", "maxImageSize": 1.5}]}, "spec.rules[0].maxImageSize", "Invalid value"),
        (
            {"rules": [{"name": "r", "support": {"warnDaysBefore": "soon"}}]},
            "spec.rules[0].support.warnDaysBefore",
            "must be of type integer",
        ),
    ],
)
def test_the_api_server_rejects(
    kube: ControlPlane, crd: None, spec: dict[str, Any], field: str, problem: str
) -> None:
    code, err = dry_run(kube, policy(spec))
    assert code != 0
    assert field in err, err
    assert problem in err, err


def test_both_forms_of_a_distribution_are_accepted(kube: ControlPlane, crd: None) -> None:
    spec = {"rules": [{"name": "r", "denyDistros": ["alpine", {"id": "ubuntu", "versions": ["23.10"]}]}]}
    code, err = dry_run(kube, policy(spec))
    assert code == 0, err
