"""The chart's monitoring objects (ServiceMonitor, PrometheusRule, Grafana dashboard) as the tests see them:
rendered by helm with them switched on, and the metric names their queries read.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from support.kube import REPO_ROOT

CHART = REPO_ROOT / "charts" / "distroguard"
RELEASE = "distroguard"
NAMESPACE = "distroguard"
"""The release and namespace the alert unit tests (tests/fixtures/monitoring) are written for: the webhook's
job is `distroguard`, the audit's `distroguard-audit`."""
ON = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
)
PROMETHEUS_OPERATOR_CRDS = REPO_ROOT / "tests" / "fixtures" / "crds" / "prometheus-operator"
ALERT_TESTS = REPO_ROOT / "tests" / "fixtures" / "monitoring" / "alerts-test.yaml"

_PREFIXED = re.compile(r"\b((?:distroguard|process)_[a-z0-9_]+)\b")
_SELECTED = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


def render(
    helm: Path, *values: str, release: str = RELEASE, namespace: str = NAMESPACE, on: bool = True
) -> list[dict[str, Any]]:
    """`helm template` of the chart, the monitoring objects on (unless not `on`), with `values` (`--set`)."""
    argv = [str(helm), "template", release, str(CHART), "--namespace", namespace]
    for value in (*(ON if on else ()), *values):
        argv += ["--set", value]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"helm template failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def dashboard(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard JSON of the rendered ConfigMap."""
    (configmap,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    (text,) = configmap["data"].values()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL query of the dashboard: its panels' targets and its query variables."""
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", ())]
    for variable in board.get("templating", {}).get("list", ()):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def rule_expressions(rule: dict[str, Any]) -> list[str]:
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads: the ones with our prefixes, and any selected with `{...}`
    (a name not ours would show up there: every selector of ours scopes its series)."""
    names = set(_PREFIXED.findall(query))
    for name in _SELECTED.findall(query):
        if name not in ("by", "without", "on", "ignoring", "group_left", "group_right"):
            names.add(name)
    return names


def exposed_names(text: str) -> set[str]:
    """Every series name a scrape declares, samples or not: a labelled metric with no series yet (an audit's
    gauges before the first audit) is declared by its HELP and TYPE lines alone."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
        "gauge": ("",),
        "untyped": ("",),
        "unknown": ("",),
        "info": ("_info",),
    }
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
