"""SIGTERM stops `distroguard run` cleanly (exit code 0), even with lookups on a gone registry in flight.

kopf, stopping, waits for every task created since its start and raises what they end with as the process's
failure; a lookup that fails at that moment must leave it nothing. Each role is started and stopped many
times in a row against the real control plane: a pod (for the audit) and admission reviews sent through the
API server (for the webhook) name images on a registry that accepts connections and drops them, and the
SIGTERM goes out as soon as that registry sees one, so the lookup's retries fail while the process stops.

Everything made in the cluster is removed afterwards, whatever happens: the pod, the webhook configurations,
and what the audits wrote (ImageFacts, reports, Events, and the CRDs when they were not there before).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distroguard.model import crd
from support.kube import ControlPlane
from support.operator_process import OperatorProcess
from support.scratch import unique

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STARTS = 20
"""Starts and stops of each role in a row: one exit code other than 0 fails the test."""
WORKLOAD_NAMESPACE = "default"
LOOKUP_SEEN_SECONDS = 60.0
"""How long a start may take until its first lookup reaches the registry (the process's start-up)."""
MANAGED = "app.kubernetes.io/managed-by=distroguard"


class GoneRegistry:
    """A registry that is gone: it accepts each connection and drops it at once, and counts them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)  # to see `close()` soon
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._seen = threading.Condition()
        self._closed = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, name="gone registry", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            connection.close()
            with self._seen:
                self.connections += 1
                self._seen.notify_all()

    def wait_beyond(self, count: int, timeout: float) -> bool:
        """Whether a connection past the `count`-th arrives within `timeout` seconds."""
        with self._seen:
            return self._seen.wait_for(lambda: self.connections > count, timeout)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)
        self._socket.close()


class Reviews:
    """Admission reviews of pods on the gone registry, sent through the API server (server-side dry runs:
    nothing is created) until stopped; each names an image of its own, so each is a new lookup."""

    def __init__(self, kube: ControlPlane, registry: GoneRegistry) -> None:
        self._kube = kube
        self._registry = registry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="admission reviews", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _send(self) -> None:
        while not self._stop.is_set():
            image = f"{self._registry.address}/{unique('nowhere/app')}:1"
            manifest = pod(unique("review"), image)
            with contextlib.suppress(subprocess.TimeoutExpired):  # the answer does not matter
                self._kube.kubectl(
                    "create",
                    "--dry-run=server",
                    "-f",
                    "-",
                    input=json.dumps(manifest),
                    check=False,
                    timeout=30,
                )
            self._stop.wait(0.2)


def pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": WORKLOAD_NAMESPACE},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


# ------------------------------------------------------------------------------------------ cleanup

CRD_NAMES = tuple(
    body["metadata"]["name"]
    for body in (crd.policy_crd(), crd.image_facts_crd(), crd.exception_crd(), *crd.policy_report_crds())
)
AUDIT_WRITES = (
    ("imagefacts", False, MANAGED),
    ("clusterpolicyreports", False, MANAGED),
    ("policyreports", True, MANAGED),
)


def _names(kube: ControlPlane, resource: str, namespaced: bool, selector: str) -> set[tuple[str, str]]:
    """(namespace, name) of each object; none when the resource is not served (its CRD is missing)."""
    args = ["get", resource, "-l", selector, "-o", "json", *(["-A"] if namespaced else [])]
    done = kube.kubectl(*args, check=False)
    if done.returncode != 0:
        return set()
    items = json.loads(done.stdout)["items"]
    return {(item["metadata"].get("namespace", ""), item["metadata"]["name"]) for item in items}


def _distroguard_events(kube: ControlPlane) -> set[tuple[str, str]]:
    done = kube.kubectl("get", "events", "-A", "-o", "json", check=False)
    if done.returncode != 0:
        return set()
    return {
        (item["metadata"]["namespace"], item["metadata"]["name"])
        for item in json.loads(done.stdout)["items"]
        if item.get("reportingComponent") == "distroguard"
    }


def _delete(kube: ControlPlane, resource: str, names: set[tuple[str, str]]) -> None:
    by_namespace: dict[str, list[str]] = {}
    for namespace, name in sorted(names):
        by_namespace.setdefault(namespace, []).append(name)
    for namespace, batch in by_namespace.items():
        scope = ["-n", namespace] if namespace else []
        kube.kubectl("delete", resource, *batch, *scope, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture(scope="module")
def audit_writes_removed(kube: ControlPlane) -> Iterator[None]:
    """Whatever the audits write while inside (they audit every namespace, so they also write about pods
    other tests left behind) is deleted afterwards: new objects, and the CRDs when they were new."""
    crds_before = {
        name for name in CRD_NAMES if kube.kubectl("get", "crd", name, check=False).returncode == 0
    }
    before = {
        resource: _names(kube, resource, namespaced, selector)
        for resource, namespaced, selector in AUDIT_WRITES
    }
    events_before = _distroguard_events(kube)
    try:
        yield
    finally:
        for resource, namespaced, selector in AUDIT_WRITES:
            _delete(kube, resource, _names(kube, resource, namespaced, selector) - before[resource])
        _delete(kube, "events", _distroguard_events(kube) - events_before)
        _delete(kube, "crd", {("", name) for name in CRD_NAMES if name not in crds_before})


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def gone_registry() -> Iterator[GoneRegistry]:
    registry = GoneRegistry()
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture(scope="module")
def audited_pod(kube: ControlPlane, gone_registry: GoneRegistry, audit_writes_removed: None) -> Iterator[str]:
    """A pod whose image is on the gone registry: every audit looks it up."""
    name = unique("gone-image")
    try:
        kube.create(pod(name, f"{gone_registry.address}/nowhere/app:1"))
        yield name
    finally:
        kube.kubectl(
            "delete", "pod", name, "-n", WORKLOAD_NAMESPACE, "--ignore-not-found", "--wait=false", check=False
        )


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("role", ["webhook", "audit", "all"])
def test_sigterm_with_lookups_failing_in_flight_exits_0_every_time(
    kube: ControlPlane, gone_registry: GoneRegistry, audited_pod: str, role: str, tmp_path: Path
) -> None:
    own = unique("distroguard-own")  # only excluded from the webhook: it need not exist
    webhook = unique("distroguard-shutdown")
    args = [
        *("--role", role),
        *("--failure-ttl", "0.5"),  # each audit and review asks the registry again
        *("--audit-interval", "1", "--audit-debounce", "0"),
    ]
    for start in range(1, STARTS + 1):
        log = tmp_path / f"run-{start}.log"
        process = OperatorProcess(kube, webhook, own, log, args).start()
        reviews = Reviews(kube, gone_registry)
        try:
            if role != "audit":
                process.wait_registered()
                reviews.start()
            seen = gone_registry.connections
            assert gone_registry.wait_beyond(seen, LOOKUP_SEEN_SECONDS), (
                f"start {start}: no lookup reached the registry\n{process.log_text()[-4000:]}"
            )
            assert process.alive(), process.log_text()[-4000:]
        finally:
            code = process.stop()  # SIGTERM while the lookup's retries are still failing
            reviews.stop()
        assert code == 0, f"start {start} of role {role} exited {code}:\n{process.log_text()[-6000:]}"
