"""The chart's monitoring objects against real servers: the rendered ServiceMonitor and PrometheusRule pass
the Prometheus Operator's CRD schemas (vendored: tests/fixtures/crds/prometheus-operator) in a server-side
dry run, and every metric the alerts and the dashboard read is on a running `distroguard run --dev`'s
/metrics (both roles: --dev runs the webhook and the audit in one process).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support import monitoring
from support.kube import ControlPlane
from support.operator_process import OperatorProcess, running_operator
from support.scratch import crds_installed, scratch_namespace

pytestmark = pytest.mark.e2e

CRDS = sorted(monitoring.PROMETHEUS_OPERATOR_CRDS.glob("*.yaml"))
CRD_NAMES = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")


@pytest.fixture(scope="module")
def prometheus_operator_crds(kube: ControlPlane) -> Iterator[None]:
    crds = [yaml.safe_load(path.read_text()) for path in CRDS]
    assert sorted(crd["metadata"]["name"] for crd in crds) == sorted(CRD_NAMES)
    with crds_installed(kube, crds):
        yield


@pytest.fixture(scope="module")
def namespace(kube: ControlPlane) -> Iterator[str]:
    with scratch_namespace(kube, "dg-monitoring") as name:
        yield name


def dry_run(kube: ControlPlane, namespace: str, *objects: dict[str, Any]) -> tuple[int, str]:
    done = kube.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input="\n---\n".join(json.dumps(o) for o in objects),
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_vendored_crds_are_the_ones_the_chart_writes_for() -> None:
    for crd in CRDS:
        text = crd.read_text()
        assert "operator.prometheus.io/version: 0.93.0" in text, crd.name
    assert {c.name for c in CRDS} == {f"monitoring.coreos.com_{n.split('.')[0]}.yaml" for n in CRD_NAMES}


def test_servicemonitor_and_prometheusrule_pass_their_crds(
    kube: ControlPlane, prometheus_operator_crds: None, namespace: str
) -> None:
    objects = monitoring.render(kube.binaries.helm, namespace=namespace)
    chosen = [
        o
        for o in objects
        if o["kind"] in ("ServiceMonitor", "PrometheusRule")
        or (o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard"))
    ]
    assert sorted(o["kind"] for o in chosen) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    code, output = dry_run(kube, namespace, *chosen)
    assert code == 0, output
    assert output.count("(server dry run)") == len(chosen), output


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "soon"}), "for"),
        ("PrometheusRule", lambda o: o["spec"]["groups"][0].pop("name"), "name"),
        ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update({"scheme": "gopher"}), "scheme"),
    ],
    ids=["rule-duration", "group-name", "endpoint-scheme"],
)
def test_the_crds_validate_what_they_are_given(
    kube: ControlPlane, prometheus_operator_crds: None, namespace: str, kind: str, change: Any, field: str
) -> None:
    """The dry runs above are checks: the same objects, spoilt, are refused by the CRDs' schemas."""
    (obj,) = [o for o in monitoring.render(kube.binaries.helm, namespace=namespace) if o["kind"] == kind]
    change(obj)
    code, output = dry_run(kube, namespace, obj)
    assert code != 0, output
    assert field in output, output


# ---------------------------------------------------------------------- metrics of a running process


@pytest.fixture(scope="module")
def distroguard(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    args = [*("--metrics-port", "0"), *("--audit-debounce", "0.5")]
    log_dir = tmp_path_factory.mktemp("distroguard")
    with running_operator(kube, "distroguard-mon", log_dir, args, ready_log="audit completed: ") as process:
        yield process


def scrape(process: OperatorProcess) -> str:
    found = re.search(r"metrics on 127\.0\.0\.1:(\d+)/metrics", process.log_text())
    assert found, "the metrics endpoint was not announced"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_every_metric_the_alerts_and_the_dashboard_read_is_exported(
    kube: ControlPlane, distroguard: OperatorProcess
) -> None:
    exposed = monitoring.exposed_names(scrape(distroguard))
    objects = monitoring.render(kube.binaries.helm)
    rules = monitoring.rule_expressions(monitoring.one(objects, "PrometheusRule"))
    board = monitoring.dashboard_queries(monitoring.dashboard(objects))
    read = {name for query in (*rules, *board) for name in monitoring.metric_names(query)}
    assert len(read) >= 15  # the extraction found the queries' metrics, not nothing
    assert read - exposed == set(), f"read by the rules or the dashboard, not exported: {read - exposed}"
    # The audit ran in this process: its completion time is a sample, not only a declaration.
    assert re.search(r"^distroguard_audit_last_completed_timestamp_seconds [1-9]", scrape(distroguard), re.M)
