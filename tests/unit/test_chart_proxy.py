"""The chart's proxy values become HTTPS_PROXY, HTTP_PROXY and NO_PROXY in both distroguard containers, and
the values the schema refuses are refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kube import Binaries, bin_dir

CHART = Path(__file__).resolve().parents[2] / "charts" / "distroguard"


def helm() -> Path:
    found = Binaries.at(bin_dir()).helm
    if not os.access(found, os.X_OK):
        pytest.fail(f"helm is missing in {bin_dir()}: run `scripts/testenv build`", pytrace=False)
    return found


def render(*values: str) -> list[dict[str, Any]]:
    args = [str(helm()), "template", "distroguard", str(CHART), "--set", "certificates.mode=cert-manager"]
    for value in values:
        args += ["--set", value]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def envs(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Deployment name -> the env list of its distroguard container."""
    found = {}
    for doc in documents:
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            found[doc["metadata"]["name"]] = container.get("env", [])
    assert len(found) == 2  # the webhook and the audit
    return found


def test_no_proxy_by_default() -> None:
    for env in envs(render()).values():
        assert not [e for e in env if "PROXY" in e["name"]]


def test_proxy_values_reach_both_containers() -> None:
    documents = render(
        "proxy.httpsProxy=http://proxy.corp.example:3128",
        "proxy.httpProxy=http://proxy.corp.example:8080",
        "extraEnv[0].name=EXTRA",
        "extraEnv[0].value=kept",
    )
    for env in envs(documents).values():
        assert env == [
            {"name": "HTTPS_PROXY", "value": "http://proxy.corp.example:3128"},
            {"name": "HTTP_PROXY", "value": "http://proxy.corp.example:8080"},
            # The kubelet expands $(KUBERNETES_SERVICE_HOST): the API server's address is always direct.
            {"name": "NO_PROXY", "value": ".svc,.cluster.local,$(KUBERNETES_SERVICE_HOST)"},
            {"name": "EXTRA", "value": "kept"},
        ]


def test_a_secret_keeps_proxy_credentials_out_of_the_pod_spec() -> None:
    documents = render("proxy.existingSecret=proxy-credentials", "proxy.httpsProxy=http://ignored:1")
    for env in envs(documents).values():
        by_name = {e["name"]: e for e in env}
        assert by_name["HTTPS_PROXY"] == {
            "name": "HTTPS_PROXY",
            "valueFrom": {
                "secretKeyRef": {"name": "proxy-credentials", "key": "HTTPS_PROXY", "optional": True}
            },
        }
        assert by_name["HTTP_PROXY"]["valueFrom"]["secretKeyRef"]["key"] == "HTTP_PROXY"
        assert "ignored" not in str(env)


def test_no_proxy_is_the_operators_list_plus_the_api_server() -> None:
    documents = render("proxy.httpsProxy=proxy:3128", "proxy.noProxy={10.0.0.0/8,.corp.example}")
    for env in envs(documents).values():
        assert {"name": "NO_PROXY", "value": "10.0.0.0/8,.corp.example,$(KUBERNETES_SERVICE_HOST)"} in env


@pytest.mark.parametrize(
    "value", ["proxy.httpsProxy=http://proxy:3128/path", "proxy.noProxy={a b}", "proxy.socks=x"]
)
def test_the_schema_refuses(value: str) -> None:
    args = [str(helm()), "template", "distroguard", str(CHART), "--set", value]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "proxy" in done.stderr
