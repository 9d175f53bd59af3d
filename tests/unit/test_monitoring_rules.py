"""The chart's monitoring objects: the ServiceMonitor scrapes both roles, the alerts pass `promtool check
rules` and their unit tests (`promtool test rules`, tests/fixtures/monitoring/alerts-test.yaml), thresholds
follow the values, and the Grafana dashboard's ConfigMap is what Grafana's sidecar picks up.

That the rules and the dashboard read only metrics a running `distroguard run` exports is checked here
against a fresh `Metrics` and, end to end, in tests/e2e/test_monitoring.py.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from distroguard.operator.metrics import Metrics
from support import monitoring, promtool
from support.kube import Binaries, bin_dir

pytestmark = [pytest.mark.go_tools]  # promtool, built by scripts/test meanwhile


@pytest.fixture(scope="module")
def helm() -> Path:
    found = Binaries.at(bin_dir()).helm
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing in {bin_dir()}: run `scripts/testenv build`", pytrace=False)
    return found


@pytest.fixture(scope="module")
def objects(helm: Path) -> list[dict[str, Any]]:
    return monitoring.render(helm)


@pytest.fixture(scope="module")
def promtool_binary() -> Path:
    try:
        return promtool.binary()
    except promtool.PromtoolMissing as e:
        pytest.fail(str(e), pytrace=False)


def write_rules(rule: dict[str, Any], directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", ()):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


# ------------------------------------------------------------------------------------- off by default


def test_monitoring_objects_are_off_by_default(helm: Path) -> None:
    kinds = [(o["kind"], o["metadata"]["name"]) for o in monitoring.render(helm, on=False)]
    assert not [k for k in kinds if k[0] in ("ServiceMonitor", "PrometheusRule")]
    assert not [k for k in kinds if k[0] == "ConfigMap" and k[1].endswith("-dashboard")]


def test_no_metrics_no_monitoring_objects(helm: Path) -> None:
    kinds = {o["kind"] for o in monitoring.render(helm, "metrics.enabled=false")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


# ------------------------------------------------------------------------------------ ServiceMonitor


def scraped(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Services the ServiceMonitor selects, by their component label."""
    monitor = monitoring.one(objects, "ServiceMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [monitoring.NAMESPACE]}
    services = [o for o in objects if o["kind"] == "Service"]
    chosen = [s for s in services if matches(monitor["spec"]["selector"], s["metadata"]["labels"])]
    return {s["metadata"]["labels"]["app.kubernetes.io/component"]: s for s in chosen}


def test_the_service_monitor_scrapes_both_roles(objects: list[dict[str, Any]]) -> None:
    monitor = monitoring.one(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    services = scraped(objects)
    assert set(services) == {"webhook", "audit"}
    deployments = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in objects
        if d["kind"] == "Deployment"
    }
    for role, service in services.items():
        # The Service's `metrics` port leads to a container port of that name on that role's pods.
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
        pod = deployments[role]["spec"]["template"]
        assert all(pod["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())
        container_ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", ())]
        assert {"name": "metrics", "containerPort": port["port"], "protocol": "TCP"} in container_ports
    # The alerts select the audit's series by job, the Service's name.
    assert services["audit"]["metadata"]["name"] == "distroguard-audit"
    assert services["webhook"]["metadata"]["name"] == "distroguard"


def test_without_the_audit_only_the_webhook_is_scraped(helm: Path) -> None:
    assert set(scraped(monitoring.render(helm, "audit.enabled=false"))) == {"webhook"}


# ------------------------------------------------------------------------------------ PrometheusRule


def test_the_rules_pass_promtool_check(
    objects: list[dict[str, Any]], promtool_binary: Path, tmp_path: Path
) -> None:
    rules = write_rules(monitoring.one(objects, "PrometheusRule"), tmp_path)
    done = promtool.run("check", "rules", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout
    # The check reads the expressions: a broken one fails it.
    broken = yaml.safe_load(rules.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "sum by (job (rate(x[5m]))"
    rules.write_text(yaml.safe_dump(broken))
    assert promtool.run("check", "rules", str(rules)).returncode != 0


def test_every_alert_is_unit_tested_and_the_tests_pass(
    objects: list[dict[str, Any]], promtool_binary: Path, tmp_path: Path
) -> None:
    rule = monitoring.one(objects, "PrometheusRule")
    write_rules(rule, tmp_path)
    tests = shutil.copy(monitoring.ALERT_TESTS, tmp_path / "alerts-test.yaml")
    done = promtool.run("test", "rules", str(tests), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    cases = [
        c for t in yaml.safe_load(monitoring.ALERT_TESTS.read_text())["tests"] for c in t["alert_rule_test"]
    ]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert fires == alerts  # each alert fires in a test...
    assert silent == alerts  # ...and stays silent in another


def test_the_unit_tests_can_fail(
    objects: list[dict[str, Any]], promtool_binary: Path, tmp_path: Path
) -> None:
    """A threshold other than the tests expect (the default) fails them."""
    rule = copy.deepcopy(monitoring.one(objects, "PrometheusRule"))
    (ending,) = [
        r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "DistroguardExceptionEnding"
    ]
    assert "< 7 * 86400" in ending["expr"]
    ending["expr"] = ending["expr"].replace("< 7 * 86400", "< 2 * 86400")
    write_rules(rule, tmp_path)
    tests = shutil.copy(monitoring.ALERT_TESTS, tmp_path / "alerts-test.yaml")
    done = promtool.run("test", "rules", str(tests), cwd=tmp_path)
    assert done.returncode != 0
    assert "DistroguardExceptionEnding" in done.stdout + done.stderr


def test_thresholds_and_jobs_follow_the_values(helm: Path, promtool_binary: Path, tmp_path: Path) -> None:
    objects = monitoring.render(
        helm,
        "metrics.prometheusRule.webhookErrorsPerMinute=3",
        "metrics.prometheusRule.unresolvedImagesPerMinute=2",
        "metrics.prometheusRule.exceptionEndingDays=14",
        "metrics.prometheusRule.for=2m",
        "metrics.prometheusRule.severity.webhook=page",
        "metrics.prometheusRule.labels.release=kps",
        "audit.intervalSeconds=600",
        "eol.maxAgeDays=10",
        release="guard",
        namespace="security",
    )
    rule = monitoring.one(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    by_name = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    errors = by_name["DistroguardWebhookErrors"]
    assert "> 3" in errors["expr"]
    assert 'namespace="security", job="guard-distroguard"' in errors["expr"]
    assert (errors["for"], errors["labels"]["severity"]) == ("2m", "page")
    assert "> 2\n" in by_name["DistroguardUnresolvedImages"]["expr"]
    assert "< 14 * 86400" in by_name["DistroguardExceptionEnding"]["expr"]
    audit = by_name["DistroguardAuditNotCompleted"]["expr"]
    assert "> 2 * 600" in audit
    assert 'job="guard-distroguard-audit"' in audit
    assert "> 10" in by_name["DistroguardEolDataStale"]["expr"]
    done = promtool.run("check", "rules", str(write_rules(rule, tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_threshold_values_fail_the_render(helm: Path) -> None:
    for value in ("metrics.prometheusRule.for=soon", "metrics.prometheusRule.webhookErrorsPerMinute=0"):
        with pytest.raises(AssertionError, match="prometheusRule"):
            monitoring.render(helm, value)


# --------------------------------------------------------------------------------- Grafana dashboard


def test_the_dashboard_configmap_is_labelled_for_grafana_s_sidecar(
    helm: Path, objects: list[dict[str, Any]]
) -> None:
    (configmap,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == monitoring.NAMESPACE
    other = monitoring.render(
        helm,
        "metrics.grafanaDashboard.labels.grafana_dashboard=null",
        "metrics.grafanaDashboard.labels.dashboards=distroguard",
        "metrics.grafanaDashboard.annotations.grafana_folder=Security",
        "metrics.grafanaDashboard.namespace=monitoring",
    )
    (moved,) = [o for o in other if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    assert "grafana_dashboard" not in moved["metadata"]["labels"]
    assert moved["metadata"]["labels"]["dashboards"] == "distroguard"
    assert moved["metadata"]["annotations"] == {"grafana_folder": "Security"}
    assert moved["metadata"]["namespace"] == "monitoring"


def test_the_dashboard_shows_what_the_issue_asks_for(objects: list[dict[str, Any]]) -> None:
    board = monitoring.dashboard(objects)
    assert board["uid"] == "distroguard"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]
    read = {name for panel in panels for t in panel["targets"] for name in monitoring.metric_names(t["expr"])}
    assert {
        "distroguard_admission_requests_total",  # verdicts over time
        "distroguard_audit_images",  # images by OS and EOL state
        "distroguard_unresolved_images_total",  # unresolved reasons
        "distroguard_admission_duration_seconds_bucket",  # latency
        "distroguard_cache_lookups_total",  # cache hits
        "distroguard_audit_duration_seconds_sum",  # the audit's duration
    } <= read
    by_title = {p["title"]: p for p in panels}
    assert "sum by (eol_state)" in by_title["Images by EOL state"]["targets"][0]["expr"]
    assert "sum by (os, version)" in by_title["Images by OS"]["targets"][0]["expr"]


# --------------------------------------------------------------------- metrics that the queries read


def test_rules_and_dashboard_read_only_metrics_distroguard_defines(objects: list[dict[str, Any]]) -> None:
    """Against a fresh process's registry (tests/e2e/test_monitoring.py scrapes a running one)."""
    body, _ = Metrics().render()
    exposed = monitoring.exposed_names(body.decode())
    queries = monitoring.rule_expressions(monitoring.one(objects, "PrometheusRule"))
    queries += monitoring.dashboard_queries(monitoring.dashboard(objects))
    read = {name for query in queries for name in monitoring.metric_names(query)}
    assert "distroguard_exception_end_timestamp_seconds" in read
    assert read - exposed == set()


def test_metric_names_are_found_in_queries() -> None:
    query = (
        'sum by (le) (rate(distroguard_admission_duration_seconds_bucket{namespace=~"$ns"}[5m]))'
        ' / on (job) up{a="b"}'
    )
    assert monitoring.metric_names(query) == {"distroguard_admission_duration_seconds_bucket", "up"}
