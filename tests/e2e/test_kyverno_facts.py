"""A real Kyverno uses distroguard's facts: its ClusterPolicy asks `GET /v1/facts?image=REF` through
`context.apiCall.service` and denies a musl image, which Kyverno alone cannot see (its `imageData` reads
only the manifest and the config).

Kyverno v1.19.1, built from its Go module by `scripts/testenv build --kyverno`, runs outside a cluster
(`support.kyverno`) against a control plane of this module's own: Kyverno's CRDs (PolicyReports among
them) and its webhook configurations never meet the session's control plane. `distroguard run --dev`
serves the facts API on its webhook's HTTPS server; Kyverno trusts it by the caBundle of distroguard's
own webhook configuration. Kyverno runs under strace: every connection it makes goes to 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from support import kube as kube_support
from support import kyverno
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT
from support.kube import ControlPlane
from support.kyverno_policy import denial_text, example_policy, localized
from support.operator_process import OperatorProcess
from support.registry_server import RegistryServer, push_root
from support.scratch import unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.go_tools]

FACTS_PATH = "/v1/facts"


def pod(namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": unique("app"), "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def dry_run(plane: ControlPlane, manifest: dict[str, Any]) -> tuple[bool, str]:
    """(admitted, what the API server said) for a server-side dry-run create."""
    done = plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
    return done.returncode == 0, done.stderr + done.stdout


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own (Kyverno's CRDs and webhooks stay in it)."""
    try:
        binaries = kube_support.Binaries.locate()
        kyverno.KyvernoBinaries.locate()
    except (kube_support.ControlPlaneError, kyverno.KyvernoError) as e:
        pytest.fail(str(e), pytrace=False)
    started = kube_support.start(binaries=binaries)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, str]:
    return {
        "musl": push_root(registry, unique("kyverno/alpine"), ALPINE_ROOT),
        "glibc": push_root(registry, unique("kyverno/debian"), DEBIAN_12_ROOT),
    }


@pytest.fixture(scope="module")
def distroguard(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    plane.kubectl("create", "namespace", "distroguard")
    log = tmp_path_factory.mktemp("distroguard") / "run.log"
    process = OperatorProcess(
        plane, "distroguard-kyverno-e2e", "distroguard", log, ["--metrics-port", "0", "--facts-api"]
    )
    try:
        process.start()
        process.wait_registered()
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-6000:])
    assert code == 0, "distroguard run did not stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def facts_endpoint(plane: ControlPlane, distroguard: OperatorProcess) -> tuple[str, str]:
    """(https://127.0.0.1:PORT, its CA in PEM): from distroguard's own webhook configuration."""
    configuration = plane.kubectl_json("get", "validatingwebhookconfiguration", distroguard.webhook_name)
    client = configuration["webhooks"][0]["clientConfig"]
    url = urllib.parse.urlsplit(client["url"])
    assert url.scheme == "https", client["url"]
    assert url.hostname == "127.0.0.1", client["url"]
    return f"https://{url.netloc}", base64.b64decode(client["caBundle"]).decode()


@pytest.fixture(scope="module")
def running_kyverno(
    plane: ControlPlane, facts_endpoint: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kyverno.Kyverno]:
    base, _ = facts_endpoint
    started = kyverno.start(
        plane,
        tmp_path_factory.mktemp("kyverno"),
        http_allowlist=[base + FACTS_PATH],
        trace_connections=True,
    )
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()
        print(started.log_tail(80))


# --------------------------------------------------------------------------------------------- tests


def test_kyverno_denies_musl_through_distroguards_facts(
    plane: ControlPlane,
    images: dict[str, str],
    distroguard: OperatorProcess,
    facts_endpoint: tuple[str, str],
    running_kyverno: kyverno.Kyverno,
) -> None:
    base, ca_pem = facts_endpoint
    namespace = unique("apps")
    plane.kubectl("create", "namespace", namespace)
    policy = localized(example_policy(), base, ca_pem, namespace)
    plane.kubectl("apply", "-f", "-", input=json.dumps(policy))
    name = policy["metadata"]["name"]
    plane.kubectl("wait", "--for=condition=Ready", f"clusterpolicy/{name}", "--timeout=120s", timeout=150)

    denied_for = denial_text(policy)
    musl = pod(namespace, images["musl"])
    said: list[str] = []

    def musl_denied() -> bool:
        admitted, message = dry_run(plane, musl)
        said.append(message)
        return not admitted and denied_for in message

    # The API server's view of Kyverno's webhooks follows a watch: the policy's rule reaches it soon after.
    deadline = time.monotonic() + 90
    while not musl_denied():
        if time.monotonic() > deadline:
            pytest.fail(f"Kyverno did not deny the musl image within 90 s; it last said: {said[-1]}")
        time.sleep(0.5)
    assert "kyverno" in said[-1], said[-1]
    assert name in said[-1], said[-1]

    admitted, message = dry_run(plane, pod(namespace, images["glibc"]))
    assert admitted, f"the glibc image was refused: {message}"

    # Everything Kyverno connected to is on this machine; and the trace is complete enough to show the API
    # server and distroguard's facts API among them.
    connections = running_kyverno.connections()
    api_port = urllib.parse.urlsplit(plane.server).port
    facts_port = urllib.parse.urlsplit(base).port
    ports = {c.port for c in connections}
    assert api_port in ports, connections
    assert facts_port in ports, connections
    elsewhere = [c for c in connections if not c.loopback]
    assert not elsewhere, f"Kyverno connected off this machine: {elsewhere}"
