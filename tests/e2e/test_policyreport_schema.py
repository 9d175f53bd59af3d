"""distroguard's PolicyReports against the wgpolicyk8s.io CRDs the chart installs
(templates/policyreport-crds.yaml), in the real API server: every sample report (tests/support/report_samples:
each result kind, the summary) passes a server-side dry run with the CRDs' validation, and a result outside
the format (a severity or result Policy Reporter does not know) is refused. Dry runs store nothing; the CRDs
are removed afterwards when they were not there before.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from support import monitoring
from support.kube import ControlPlane
from support.report_samples import sample_reports
from support.scratch import crds_installed, scratch_namespace, unique

pytestmark = pytest.mark.e2e

CRD_NAMES = ("policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io")


@pytest.fixture(scope="module")
def policyreport_crds(kube: ControlPlane) -> Iterator[None]:
    crds = [
        o
        for o in monitoring.render(kube.binaries.helm, on=False)
        if o["kind"] == "CustomResourceDefinition" and o["metadata"]["name"] in CRD_NAMES
    ]
    assert len(crds) == 2
    with crds_installed(kube, crds):
        yield


@pytest.fixture(scope="module")
def namespace(kube: ControlPlane) -> Iterator[str]:
    with scratch_namespace(kube, "dg-reports") as name:
        yield name


def placed(report: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The report in the test's namespace, without owner references (their workloads do not exist)."""
    report = copy.deepcopy(report)
    metadata = report["metadata"]
    metadata.pop("ownerReferences", None)
    if report["kind"] == "PolicyReport":
        metadata["namespace"] = namespace
        report["scope"]["namespace"] = namespace
    else:
        metadata["name"] = unique("distroguard-summary")
    return report


def dry_run(kube: ControlPlane, *objects: dict[str, Any]) -> tuple[int, str]:
    done = kube.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=distroguard",
        "-f",
        "-",
        input="\n---\n".join(json.dumps(o) for o in objects),
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_reports_pass_the_crds_validation(
    kube: ControlPlane, policyreport_crds: None, namespace: str
) -> None:
    reports = [placed(r, namespace) for r in sample_reports()]
    assert {r["kind"] for r in reports} == {"PolicyReport", "ClusterPolicyReport"}
    results = {r["result"] for report in reports for r in report["results"]}
    assert results >= {"pass", "fail", "warn", "error"}
    code, output = dry_run(kube, *reports)
    assert code == 0, output
    assert output.count("(server dry run)") == len(reports), output


@pytest.mark.parametrize(
    ("field", "value"),
    [("severity", "urgent"), ("result", "ok"), ("scored", "yes")],
)
def test_a_result_outside_the_format_is_refused(
    kube: ControlPlane, policyreport_crds: None, namespace: str, field: str, value: str
) -> None:
    report = placed(sample_reports()[0], namespace)
    report["results"][0][field] = value
    code, output = dry_run(kube, report)
    assert code != 0, output
    assert f"results[0].{field}" in output, output
